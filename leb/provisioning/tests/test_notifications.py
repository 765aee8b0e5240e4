"""handleDownloadProgressInfo: authentication, validation, duplicates, order."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from leb.lines.models import Line
from leb.provisioning.actions import do_order_profile
from leb.provisioning.models import Profile, ProfileEvent, ProfileState

from .helpers import EID

pytestmark = pytest.mark.django_db

URL = "/gsma/rsp2/es2plus/handleDownloadProgressInfo"
SECRET = "s" * 40


def body(
    iccid: str, point: int, at: datetime, *, status: str = "Executed-Success"
) -> dict[str, Any]:
    return {
        "header": {"functionRequesterIdentifier": "smdp", "functionCallIdentifier": "n-1"},
        "eid": EID,
        "iccid": iccid,
        "profileType": "leb-prepaid",
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "notificationPointId": point,
        "notificationPointStatus": {"status": status},
    }


def post(document: Any, secret: str = SECRET, raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(document)
    return Client().post(
        URL,
        data=data,
        content_type="application/json",
        headers={"X-Leb-Notification-Secret": secret},
    )


@pytest.fixture
def released(stocked_line: Any) -> Profile:
    return do_order_profile(stocked_line(), actor="t")


def test_each_step_is_recorded_and_answered_204(released: Profile, now: datetime) -> None:
    # when the SM-DP+ reports download, install, disable, enable and delete
    steps = [
        (3, "downloaded"),
        (4, "installed"),
        (102, "installed"),
        (101, "installed"),
        (5, "deleted"),
    ]
    for minutes, (point, state) in enumerate(steps, start=1):
        response = post(body(released.iccid, point, now + timedelta(minutes=minutes)))
        # then each is accepted with no content and moves the state
        assert response.status_code == 204, response.content
        released.refresh_from_db()
        assert released.state == state
    kinds = list(ProfileEvent.objects.filter(actor="smdp").values_list("kind", flat=True))
    assert kinds == ["downloaded", "installed", "disabled", "enabled", "deleted"]
    assert Line.objects.get(pk=released.line_id).installed_at is None


def test_the_same_event_twice_is_recorded_once(released: Profile, now: datetime) -> None:
    document = body(released.iccid, 4, now)
    assert post(document).status_code == 204
    assert post(document).status_code == 204
    assert ProfileEvent.objects.filter(kind="installed").count() == 1
    released.refresh_from_db()
    assert released.state == ProfileState.INSTALLED


def test_an_older_event_after_a_newer_one_does_not_move_the_state_back(
    released: Profile, now: datetime
) -> None:
    # given the install (newer) arrived first
    assert post(body(released.iccid, 4, now + timedelta(minutes=2))).status_code == 204
    # when the download (older) arrives late
    assert post(body(released.iccid, 3, now + timedelta(minutes=1))).status_code == 204
    # then it is in the history but the profile stays installed
    released.refresh_from_db()
    assert released.state == ProfileState.INSTALLED
    late = ProfileEvent.objects.get(kind="downloaded")
    assert not late.applied and "older" in late.data["ignored"]
    assert released.last_notification_at == now + timedelta(minutes=2)


def test_a_failed_download_is_recorded_without_moving_the_state(
    released: Profile, now: datetime
) -> None:
    document = body(released.iccid, 3, now, status="Failed")
    document["notificationPointStatus"]["statusCodeData"] = {
        "subjectCode": "8.1",
        "reasonCode": "4.8",
        "message": "insufficient memory",
    }
    assert post(document).status_code == 204
    released.refresh_from_db()
    assert released.state == ProfileState.RELEASED and released.activation_code_usable
    event = ProfileEvent.objects.get(kind="failed")
    assert event.data["status_code_data"]["reasonCode"] == "4.8"


def test_an_unexpected_step_is_recorded_but_ignored(released: Profile, now: datetime) -> None:
    # a delete for a profile that was never downloaded
    assert post(body(released.iccid, 5, now)).status_code == 204
    released.refresh_from_db()
    assert released.state == ProfileState.RELEASED
    assert "not expected" in ProfileEvent.objects.get(kind="deleted").data["ignored"]


@pytest.mark.parametrize("secret", ["", "wrong", SECRET + "x"])
def test_a_wrong_secret_is_refused_and_nothing_is_written(
    released: Profile, now: datetime, secret: str
) -> None:
    before = ProfileEvent.objects.count()
    response = post(body(released.iccid, 4, now), secret=secret)
    assert response.status_code == 401
    status = response.json()["header"]["functionExecutionStatus"]
    assert status["status"] == "Failed" and "secret" in status["statusCodeData"]["message"]
    assert ProfileEvent.objects.count() == before
    released.refresh_from_db()
    assert released.state == ProfileState.RELEASED


def test_without_a_configured_secret_every_notification_is_refused(
    released: Profile, now: datetime, settings: Any
) -> None:
    settings.SMDP_NOTIFICATION_SECRET = ""
    settings.SMDP_SIMULATOR = False
    assert post(body(released.iccid, 4, now), secret="").status_code == 401


def test_an_unknown_iccid_is_refused_and_nothing_is_written(now: datetime) -> None:
    from leb.testing import make_iccid

    response = post(body(make_iccid(987654), 4, now))
    assert response.status_code == 404
    codes = response.json()["header"]["functionExecutionStatus"]["statusCodeData"]
    assert (codes["subjectCode"], codes["reasonCode"]) == ("8.2.1", "3.9")
    assert "No eSIM profile" in codes["message"]
    assert not ProfileEvent.objects.exists()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"iccid": "8985200000000000000"}, "check digit"),
        ({"iccid": "12AB"}, "digits only"),
        ({"eid": "1234"}, "32 digits"),
        ({"timestamp": "yesterday"}, "time zone"),
        ({"timestamp": "2026-06-01T04:00:00"}, "time zone"),
        ({"notificationPointId": 77}, "Unknown notificationPointId"),
        ({"notificationPointId": "x"}, "not a number"),
        ({"notificationPointStatus": {"status": "Maybe"}}, "notificationPointStatus"),
        ({"notificationPointStatus": None}, "lacks"),
    ],
)
def test_malformed_notifications_are_clear_400s(
    released: Profile, now: datetime, change: dict[str, Any], words: str
) -> None:
    document = {**body(released.iccid, 4, now), **change}
    response = post(document)
    assert response.status_code == 400
    assert (
        words in response.json()["header"]["functionExecutionStatus"]["statusCodeData"]["message"]
    )
    assert not ProfileEvent.objects.filter(actor="smdp").exists()


def test_not_json_and_not_an_object_are_400s(released: Profile) -> None:
    assert post(None, raw=b"{nope").status_code == 400
    assert post([1, 2]).status_code == 400


def test_a_19_digit_iccid_padded_with_f_is_accepted(stocked_line: Any, now: datetime) -> None:
    # given a line whose ICCID has 19 digits
    from stdnum import luhn

    from leb.lines.actions import do_create_line
    from leb.provisioning import simulator
    from leb.provisioning.actions import do_add_profile

    base = "898520000000000012"
    iccid = base + luhn.calc_check_digit(base)
    line = do_create_line(iccid=iccid, policy=stocked_line().policy, currency="HKD")
    simulator.stock([iccid])
    profile = do_order_profile(line, actor="t")
    do_add_profile(line)
    # when the SM-DP+ reports it padded to 20 characters
    assert post(body(iccid + "F", 3, now)).status_code == 204
    profile.refresh_from_db()
    assert profile.state == ProfileState.DOWNLOADED


def test_get_is_not_allowed() -> None:
    assert Client().get(URL).status_code == 405


def test_the_simulator_is_404_when_switched_off(settings: Any) -> None:
    settings.SMDP_SIMULATOR = False
    response = Client().post(
        "/simulator/smdp/gsma/rsp2/es2plus/downloadOrder",
        data="{}",
        content_type="application/json",
        headers={"X-Admin-Protocol": "gsma/rsp/v2.2.0"},
    )
    assert response.status_code == 404


def test_the_simulator_answers_es2_errors_over_http() -> None:
    # the simulator is a real HTTP endpoint: a request without the protocol header is refused
    url = "/simulator/smdp/gsma/rsp2/es2plus/downloadOrder"
    assert Client().post(url, data="{}", content_type="application/json").status_code == 400
    response = Client().post(
        url,
        data=json.dumps(
            {
                "header": {"functionRequesterIdentifier": "x", "functionCallIdentifier": "1"},
                "iccid": "12",
            }
        ),
        content_type="application/json",
        headers={"X-Admin-Protocol": "gsma/rsp/v2.2.0"},
    )
    codes = response.json()["header"]["functionExecutionStatus"]["statusCodeData"]
    assert (codes["subjectCode"], codes["reasonCode"]) == ("8.2.1", "2.1")
