"""The back office's profile page and actions, and `leb esim`."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from leb.provisioning.actions import do_order_profile
from leb.provisioning.models import Profile, ProfileState, SimulatedProfile

from .helpers import EID

pytestmark = pytest.mark.django_db


@pytest.fixture
def boss_client(django_user_model: Any) -> Client:
    boss = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    client = Client()
    client.force_login(boss)
    return client


def test_staff_order_from_the_back_office_and_see_the_history(
    stocked_line: Any, boss_client: Client
) -> None:
    # given a line with a profile in stock
    line = stocked_line()
    profile = line.esim_profile
    # when staff run the order action
    response = boss_client.post(
        reverse("admin:provisioning_profile_changelist"),
        {"action": "order_profiles", "_selected_action": [profile.pk]},
        follow=True,
    )
    # then it is ordered, and the profile page shows its state, history and calls
    assert "Ordered 1 eSIM." in response.content.decode()
    profile.refresh_from_db()
    assert profile.state == ProfileState.RELEASED
    html = boss_client.get(
        reverse("admin:provisioning_profile_change", args=[profile.pk])
    ).content.decode()
    assert "Ready to download" in html and "Download order placed" in html
    assert "confirmOrder" in html and str(profile.line) in html


def test_a_refused_action_is_a_message_not_a_500(stocked_line: Any, boss_client: Client) -> None:
    profile = stocked_line().esim_profile
    response = boss_client.post(
        reverse("admin:provisioning_profile_changelist"),
        {"action": "release_profiles", "_selected_action": [profile.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Only a held (confirmed) profile can be released" in response.content.decode()


def test_staff_without_the_permission_get_no_actions(
    stocked_line: Any, django_user_model: Any
) -> None:
    from django.contrib.auth.models import Permission

    support = django_user_model.objects.create_user("support", "s@example.com", "pw", is_staff=True)
    support.user_permissions.add(
        Permission.objects.get(codename="view_profile", content_type__app_label="provisioning")
    )
    client = Client()
    client.force_login(support)
    profile = stocked_line().esim_profile
    client.post(
        reverse("admin:provisioning_profile_changelist"),
        {"action": "order_profiles", "_selected_action": [profile.pk]},
    )
    profile.refresh_from_db()
    assert profile.state == ProfileState.AVAILABLE


def run(*args: str) -> str:
    out = StringIO()
    call_command("esim", *args, stdout=out)
    return out.getvalue()


def test_the_command_plays_the_phone_end_to_end(make_line: Any) -> None:
    # given a line stocked through the command and ordered through it
    line = make_line()
    assert "1 profiles added" in run("stock", line.iccid)
    output = run("order", line.iccid)
    code = output.split("activation code: ")[1].strip()
    # when the phone downloads and installs it, delivering at once
    output = run("download", code, "--eid", EID, "--install", "--now")
    # then leb has recorded both steps
    assert "notification: delivered" in output
    assert Profile.objects.get(line=line).state == ProfileState.INSTALLED
    # when the phone deletes it
    run("delete", line.iccid, "--now")
    assert Profile.objects.get(line=line).state == ProfileState.DELETED


def test_without_now_the_notification_waits_for_the_worker(stocked_line: Any) -> None:
    from .helpers import pending_notifications

    profile = do_order_profile(stocked_line(), actor="t")
    output = run("download", profile.matching_id, "--eid", EID)
    assert "queued" in output and len(pending_notifications()) == 1
    assert Profile.objects.get(pk=profile.pk).state == ProfileState.RELEASED


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("stock", "1234"), "19 or 20 digits"),
        (("order", "12"), "19 or 20 digits"),
        (("order", "89852000000099999995"), "No line"),
        (("download", "NOPE", "--eid", EID), "refused this activation code"),
        (("download", "LPA:1$other.example$X", "--eid", EID), "another SM-DP+"),
        (("download", "LPA:2$x", "--eid", EID), "not an eSIM activation code"),
        (("download", "X", "--eid", "123"), "32 digits"),
        (("install", "89852000000099999995"), "no such eSIM"),
    ],
)
def test_the_command_explains_bad_input(args: tuple[str, ...], words: str) -> None:
    with pytest.raises(CommandError, match=words):
        run(*args)
    assert not SimulatedProfile.objects.exclude(state="available").exists()


def test_installing_before_downloading_is_refused(stocked_line: Any) -> None:
    line = stocked_line()
    do_order_profile(line, actor="t")
    with pytest.raises(CommandError, match="not possible now"):
        run("install", line.iccid)


def test_the_phone_commands_need_the_simulator(settings: Any) -> None:
    settings.SMDP_SIMULATOR = False
    with pytest.raises(CommandError, match="simulator is off"):
        run("download", "X", "--eid", EID)
