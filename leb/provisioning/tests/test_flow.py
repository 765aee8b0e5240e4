"""Ordering, confirming, downloading and installing through the simulator."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from leb.audit.models import AuditEntry
from leb.common import clock
from leb.provisioning import simulator
from leb.provisioning.actions import (
    ProvisioningError,
    do_cancel_order,
    do_confirm_order,
    do_download_order,
    do_order_profile,
    do_redownload_profile,
    do_release_profile,
)
from leb.provisioning.models import (
    CallStatus,
    Es2Call,
    Profile,
    ProfileEvent,
    ProfileState,
    SimulatedProfile,
)

from .helpers import EID, OTHER_EID, deliver_pending

pytestmark = pytest.mark.django_db


def test_a_line_is_ordered_confirmed_downloaded_and_installed(
    stocked_line: Any, transport: Any, now: datetime
) -> None:
    # given a line whose profile is in the SM-DP+'s stock
    line = stocked_line()
    # when staff order its eSIM
    profile = do_order_profile(line, actor="staff:ops")
    # then it is reserved, then confirmed and released with a usable activation code
    assert profile.state == ProfileState.RELEASED
    assert profile.activation_code == f"1${simulator.ADDRESS}${profile.matching_id}"
    assert profile.activation_code_usable
    kinds = list(profile.events.values_list("kind", "to_state"))
    assert kinds == [("ordered", "reserved"), ("confirmed", "released")]
    assert Es2Call.objects.filter(status=CallStatus.SUCCEEDED).count() == 2
    assert AuditEntry.objects.filter(action__startswith="esim.").count() == 2
    # when the phone downloads it and the notification arrives
    simulator.phone_download(f"LPA:{profile.activation_code}", eid=EID)
    assert deliver_pending() == ["delivered"]
    profile.refresh_from_db()
    # then the profile is downloaded on that EID and the code is no longer shown
    assert (profile.state, profile.eid) == (ProfileState.DOWNLOADED, EID)
    assert not profile.activation_code_usable
    # when it is installed
    simulator.phone_act("install", profile.iccid, eid=EID)
    assert deliver_pending() == ["delivered"]
    profile.refresh_from_db()
    line.refresh_from_db()
    # then both the profile and the line say so
    assert profile.state == ProfileState.INSTALLED
    assert line.installed_at == now and line.eid == EID
    assert [r.status_code for r in transport.responses] == [204, 204]


def test_confirm_without_release_holds_the_profile_until_released(stocked_line: Any) -> None:
    # given a reserved profile
    profile = do_download_order(stocked_line().esim_profile, actor="t")
    # when confirmed with the release flag off
    profile = do_confirm_order(profile, eid=EID, release_flag=False, actor="t")
    # then it is held: the code is not usable, the phone is refused
    assert profile.state == ProfileState.CONFIRMED and not profile.activation_code_usable
    with pytest.raises(simulator.PhoneError, match="not released"):
        simulator.phone_download(profile.matching_id, eid=EID)
    # when released
    profile = do_release_profile(profile, actor="t")
    # then it can be downloaded
    assert profile.state == ProfileState.RELEASED and profile.activation_code_usable
    simulator.phone_download(profile.matching_id, eid=EID)


def test_an_eid_given_at_order_time_binds_the_profile_to_that_phone(stocked_line: Any) -> None:
    profile = do_order_profile(stocked_line(), eid=EID, actor="t")
    assert profile.eid == EID
    with pytest.raises(simulator.PhoneError, match="another phone"):
        simulator.phone_download(profile.matching_id, eid=OTHER_EID)


@pytest.mark.parametrize("bad", ["1234", "8904903200000000000000000000000X", "8" * 32])
def test_a_malformed_eid_is_refused_before_anything_is_sent(stocked_line: Any, bad: str) -> None:
    line = stocked_line()
    with pytest.raises(ProvisioningError) as caught:
        do_order_profile(line, eid=bad, actor="t")
    assert "EID" in caught.value.messages[0]
    assert Es2Call.objects.count() == 0
    assert line.esim_profile.state == ProfileState.AVAILABLE


def test_an_iccid_the_smdp_does_not_know_is_a_clear_error_and_changes_nothing(
    make_line: Any,
) -> None:
    # given a profile leb knows but the SM-DP+ does not stock
    from leb.provisioning.actions import do_add_profile

    line = make_line()
    do_add_profile(line)
    # when ordered
    with pytest.raises(ProvisioningError) as caught:
        do_order_profile(line, actor="t")
    # then the error says so, the call is recorded as refused and the profile is unchanged
    assert "does not know this profile ICCID" in caught.value.messages[0]
    call = Es2Call.objects.get()
    assert (call.status, call.subject_code, call.reason_code) == ("failed", "8.2.1", "3.9")
    profile = Profile.objects.get(line=line)
    assert profile.state == ProfileState.AVAILABLE and not profile.events.exists()


def test_a_profile_already_in_use_at_the_smdp_is_refused(stocked_line: Any) -> None:
    line = stocked_line()
    SimulatedProfile.objects.filter(iccid=line.iccid).update(state="installed")
    with pytest.raises(ProvisioningError, match="already in use"):
        do_order_profile(line, actor="t")
    assert Profile.objects.get(line=line).state == ProfileState.AVAILABLE


def test_an_expired_download_order_cannot_be_confirmed(stocked_line: Any, now: datetime) -> None:
    profile = do_download_order(stocked_line().esim_profile, actor="t")
    later = now + simulator.ORDER_TTL + timedelta(minutes=1)
    with clock.frozen(later), pytest.raises(ProvisioningError, match="expired"):
        do_confirm_order(profile, actor="t")
    profile.refresh_from_db()
    assert profile.state == ProfileState.RESERVED


def test_a_confirm_for_a_cancelled_order_is_refused_and_writes_nothing(stocked_line: Any) -> None:
    # given an order that was cancelled
    profile = do_download_order(stocked_line().esim_profile, actor="t")
    cancelled = do_cancel_order(profile, actor="t")
    assert cancelled.state == ProfileState.CANCELLED
    events = ProfileEvent.objects.count()
    # when someone confirms it anyway (a stale page)
    with pytest.raises(ProvisioningError, match="Only a reserved profile"):
        do_confirm_order(cancelled, actor="t")
    # then nothing was sent or written
    assert ProfileEvent.objects.count() == events
    assert not Es2Call.objects.filter(function="confirmOrder").exists()
    # and the SM-DP+ itself refuses a confirm for it too
    profile.state = ProfileState.RESERVED  # what a stale copy believes
    with pytest.raises(ProvisioningError, match="no download order"):
        do_confirm_order(profile, actor="t")
    assert Profile.objects.get(pk=profile.pk).state == ProfileState.CANCELLED


def test_cancel_makes_the_activation_code_stop_working(stocked_line: Any) -> None:
    profile = do_order_profile(stocked_line(), actor="t")
    code = profile.activation_code
    profile = do_cancel_order(profile, actor="t", reason="sold by mistake")
    assert profile.activation_code == "" and not profile.activation_code_usable
    with pytest.raises(simulator.PhoneError):
        simulator.phone_download(code, eid=EID)


def test_cancel_needs_an_order_and_a_valid_final_status(stocked_line: Any) -> None:
    profile = stocked_line().esim_profile
    with pytest.raises(ProvisioningError, match="no order"):
        do_cancel_order(profile, actor="t")
    with pytest.raises(ProvisioningError, match="Available or Unavailable"):
        do_cancel_order(profile, final_status="Gone", actor="t")


def test_a_second_order_is_refused_while_one_is_open(stocked_line: Any) -> None:
    profile = do_order_profile(stocked_line(), actor="t")
    with pytest.raises(ProvisioningError, match="already ordered"):
        do_download_order(profile, actor="t")


def test_release_needs_a_held_profile(stocked_line: Any) -> None:
    profile = do_order_profile(stocked_line(), actor="t")
    with pytest.raises(ProvisioningError, match="held"):
        do_release_profile(profile, actor="t")


def test_a_timeout_leaves_the_call_pending_and_the_retry_reuses_its_identifier(
    stocked_line: Any,
) -> None:
    # given an SM-DP+ that reserves the profile but whose answer is lost
    from leb.provisioning import es2

    line = stocked_line()
    answers: list[str] = []

    def lossy(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        status, content = simulator.in_process_transport(url, body, headers)
        answers.append(json.loads(body)["header"]["functionCallIdentifier"])
        if len(answers) == 1:
            raise es2.Unreachable("ReadTimeout")
        return status, content

    client = es2.Es2Client("http://x", requester_id="leb", transport=lossy, retries=0)
    # when leb orders, the answer is lost
    with pytest.raises(ProvisioningError, match="did not answer"):
        do_download_order(line.esim_profile, actor="t", client=client)
    call = Es2Call.objects.get()
    assert call.status == CallStatus.PENDING
    assert Profile.objects.get(line=line).state == ProfileState.AVAILABLE
    # when it tries again
    profile = do_download_order(Profile.objects.get(line=line), actor="t", client=client)
    # then the same functionCallIdentifier went out, the SM-DP+ replayed its
    # first answer instead of refusing the profile as already in use
    assert answers[0] == answers[1] == str(call.function_call_id)
    assert profile.state == ProfileState.RESERVED
    call.refresh_from_db()
    assert (call.status, call.attempts) == (CallStatus.SUCCEEDED, 2)


def test_the_confirmation_code_is_never_stored(stocked_line: Any) -> None:
    profile = do_download_order(stocked_line().esim_profile, actor="t")
    profile = do_confirm_order(profile, confirmation_code="739164", actor="t")
    call = Es2Call.objects.get(function="confirmOrder")
    assert "739164" not in json.dumps(call.request)
    assert call.request["confirmation_code"] == "(given)"
    assert profile.activation_code.endswith("$1")
    with pytest.raises(simulator.PhoneError, match="confirmation code"):
        simulator.phone_download(profile.matching_id, eid=EID, confirmation_code="000000")
    simulator.phone_download(profile.matching_id, eid=EID, confirmation_code="739164")


def _install(profile: Profile) -> None:
    simulator.phone_download(profile.matching_id, eid=EID)
    simulator.phone_act("install", profile.iccid, eid=EID)
    deliver_pending()


def test_a_deleted_profile_can_be_downloaded_again_a_limited_number_of_times(
    stocked_line: Any, transport: Any, settings: Any, now: datetime
) -> None:
    # given an installed eSIM that the phone then deleted
    settings.ESIM_REDOWNLOADS_PER_30_DAYS = 1
    line = stocked_line()
    profile = do_order_profile(line, actor="t")
    _install(profile)
    simulator.phone_act("delete", profile.iccid)
    deliver_pending()
    profile.refresh_from_db()
    line.refresh_from_db()
    assert profile.state == ProfileState.DELETED and line.installed_at is None
    # when the subscriber asks to download it again
    again = do_redownload_profile(profile, actor="user:1")
    # then the SM-DP+ was asked to cancel and re-order, with a new matching ID
    assert again.state == ProfileState.RELEASED
    assert again.matching_id and again.matching_id != profile.matching_id
    assert AuditEntry.objects.filter(action="esim.redownload").count() == 1
    # and after a second deletion the limit stops a second re-download
    _install(again)
    simulator.phone_act("delete", again.iccid)
    deliver_pending()
    again.refresh_from_db()
    with pytest.raises(ProvisioningError, match="too often"):
        do_redownload_profile(again, actor="user:1")
    # thirty days later it is allowed again
    with clock.frozen(now + timedelta(days=31)):
        assert do_redownload_profile(again, actor="user:1").state == ProfileState.RELEASED


def test_only_a_deleted_profile_can_be_downloaded_again(stocked_line: Any) -> None:
    profile = do_order_profile(stocked_line(), actor="t")
    with pytest.raises(ProvisioningError, match="deleted from the phone"):
        do_redownload_profile(profile, actor="t")


def test_a_terminated_line_cannot_be_ordered(stocked_line: Any) -> None:
    line = stocked_line()
    line.status = "terminated"
    line.save(update_fields=["status"])
    with pytest.raises(ProvisioningError, match="terminated"):
        do_order_profile(line, actor="t")
