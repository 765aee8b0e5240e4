"""The subscriber's line page shows the install state and the code only while usable."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.lines.actions import do_register_real_name
from leb.provisioning import simulator
from leb.provisioning.actions import (
    do_cancel_order,
    do_confirm_order,
    do_download_order,
    do_order_profile,
)
from leb.provisioning.models import ProfileState

from .helpers import EID, deliver_pending

pytestmark = pytest.mark.django_db


def page(client: Client, line: Any) -> str:
    response = client.get(reverse("mylines:line", args=[line.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_code_is_shown_while_ready_then_the_steps_follow_the_phone(
    stocked_line: Any, owner: Any, owner_client: Client, transport: Any
) -> None:
    # given the owner's line with a released eSIM
    line = stocked_line(owner=owner)
    profile = do_order_profile(line, actor="t")
    # then the page shows the state, the QR and the activation code
    html = page(owner_client, line)
    assert 'data-esim-state="released"' in html
    assert "Ready to download" in html
    assert f"LPA:{profile.activation_code}" in html and "<svg" in html
    # when the phone downloads and installs it
    simulator.phone_download(profile.matching_id, eid=EID)
    simulator.phone_act("install", profile.iccid)
    deliver_pending()
    # then the page says installed, with its history, and the code is gone
    html = page(owner_client, line)
    assert 'data-esim-state="installed"' in html
    assert "The eSIM is installed on your phone." in html
    assert "Installed on the phone" in html and "Downloaded to the phone" in html
    assert profile.activation_code not in html and "<svg" not in html


@pytest.mark.parametrize("held", [True, False])
def test_no_code_while_held_or_after_cancel(
    stocked_line: Any, owner: Any, owner_client: Client, held: bool
) -> None:
    line = stocked_line(owner=owner)
    profile = do_download_order(line.esim_profile, actor="t")
    profile = do_confirm_order(profile, release_flag=not held, actor="t")
    code = profile.activation_code
    if not held:
        do_cancel_order(profile, actor="t")
    html = page(owner_client, line)
    assert code not in html and "<svg" not in html
    assert ("not yet released" in html) if held else ("cancelled" in html)


def test_a_deleted_esim_can_be_downloaded_again_from_the_page(
    stocked_line: Any, owner: Any, owner_client: Client, transport: Any, settings: Any
) -> None:
    # given an installed eSIM the phone deleted
    settings.ESIM_REDOWNLOADS_PER_30_DAYS = 1
    line = stocked_line(owner=owner)
    profile = do_order_profile(line, actor="t")
    simulator.phone_download(profile.matching_id, eid=EID, confirmation_code="")
    simulator.phone_act("install", profile.iccid)
    simulator.phone_act("delete", profile.iccid)
    deliver_pending()
    html = page(owner_client, line)
    assert "Download my eSIM again" in html and "1 time left" in html
    # when the subscriber asks for it
    response = owner_client.post(reverse("mylines:redownload", args=[line.pk]), follow=True)
    # then a new code is shown and the request is audited with who asked
    html = response.content.decode()
    assert "ready to download again" in html
    profile.refresh_from_db()
    assert profile.state == ProfileState.RELEASED and f"LPA:{profile.activation_code}" in html
    entry = AuditEntry.objects.get(action="esim.redownload")
    assert entry.actor == f"user:{owner.pk}"


def test_redownload_refused_for_a_profile_that_is_not_deleted(
    stocked_line: Any, owner: Any, owner_client: Client
) -> None:
    line = stocked_line(owner=owner)
    do_order_profile(line, actor="t")
    response = owner_client.post(reverse("mylines:redownload", args=[line.pk]), follow=True)
    assert "Only an eSIM that was deleted" in response.content.decode()


def test_someone_elses_line_cannot_be_redownloaded(
    stocked_line: Any, owner: Any, outsider_client: Client
) -> None:
    line = stocked_line(owner=owner)
    response = outsider_client.post(reverse("mylines:redownload", args=[line.pk]))
    assert response.status_code == 404


def test_real_name_blocks_the_code_until_registered(
    stocked_line: Any, owner: Any, owner_client: Client, hk_policy: Any
) -> None:
    # given a policy that requires real-name registration and an unregistered line
    hk_policy.requires_real_name = True
    hk_policy.save()
    line = stocked_line(owner=owner, activate=False)
    # when the eSIM is ordered, it is held, not released
    profile = do_order_profile(line, actor="t")
    assert profile.state == ProfileState.CONFIRMED
    # then the page asks for registration and shows no code
    html = page(owner_client, line)
    assert "Real-name registration is required" in html and "<svg" not in html
    # when staff register the subscriber
    do_register_real_name(
        line,
        full_name="Chan Tai Man",
        document_type="hkid",
        document_number="A123456(7)",
        actor="staff:ops",
    )
    html = page(owner_client, line)
    # then the page says so, with only the last four characters
    assert "Real-name registered" in html and "4567" in html and "A123456" not in html


def test_a_legacy_line_without_a_profile_keeps_its_code_unless_real_name_is_missing(
    make_line: Any, owner: Any, owner_client: Client, hk_policy: Any
) -> None:
    line = make_line(owner=owner, activate=False)
    assert f"LPA:{line.activation_code}" in page(owner_client, line)
    hk_policy.requires_real_name = True
    hk_policy.save()
    html = page(owner_client, line)
    assert line.activation_code not in html and "Real-name registration is required" in html
