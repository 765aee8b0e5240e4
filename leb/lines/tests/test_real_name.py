"""Real-name registration: it blocks activation where the policy requires it,
keeps no document number in clear, and its back-office page is permission-checked
and audited."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from leb.audit.models import AuditEntry
from leb.lines.actions import (
    LineError,
    do_activate_line,
    do_register_real_name,
    document_fingerprint,
)
from leb.lines.models import LineEvent, LineStatus, RealNameRegistration

pytestmark = pytest.mark.django_db


@pytest.fixture
def strict_policy(hk_policy: Any) -> Any:
    hk_policy.requires_real_name = True
    hk_policy.save()
    return hk_policy


def register(line: Any, **kwargs: Any) -> RealNameRegistration:
    values = {
        "full_name": "Chan  Tai Man",
        "document_type": "hkid",
        "document_number": "A123456(7)",
        "actor": "staff:ops",
    }
    return do_register_real_name(line, **{**values, **kwargs})


def test_activation_is_blocked_until_the_line_is_registered(
    make_line: Any, strict_policy: Any
) -> None:
    # given a line under a policy that requires real-name registration
    line = make_line(activate=False)
    # when activated without a registration
    with pytest.raises(LineError, match="real-name registration"):
        do_activate_line(line)
    # then nothing changed
    line.refresh_from_db()
    assert line.status == LineStatus.INVENTORY
    # when registered, activation works
    register(line)
    assert do_activate_line(line).status == LineStatus.ACTIVE


def test_the_document_number_is_kept_only_as_a_fingerprint_and_last_four(
    make_line: Any, strict_policy: Any, settings: Any
) -> None:
    settings.REAL_NAME_PEPPER = "p" * 40
    line = make_line(activate=False)
    registration = register(line)
    assert registration.full_name == "Chan Tai Man"
    assert registration.document_last4 == "4567"
    assert registration.document_hmac == document_fingerprint("hkid", "a1234567")
    stored = [str(v) for v in RealNameRegistration.objects.values().get().values()]
    assert not any("A123456" in value for value in stored)
    # the fingerprint depends on the pepper: a copy of the table alone reveals nothing
    settings.REAL_NAME_PEPPER = "q" * 40
    assert document_fingerprint("hkid", "A123456(7)") != registration.document_hmac
    # the line's history and the audit log record it, also without the number
    event = LineEvent.objects.get(line=line, kind="real_name_registered")
    assert event.data == {"document_type": "hkid", "document_last4": "4567"}
    assert AuditEntry.objects.filter(action="line.real_name_register").count() == 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"full_name": "  "}, "Enter the name"),
        ({"full_name": "x" * 201}, "too long"),
        ({"document_type": "library_card"}, "type of identity document"),
        ({"document_number": "12"}, "5 to 30"),
        ({"document_number": "-- ()"}, "5 to 30"),
    ],
)
def test_bad_registrations_are_refused_and_nothing_is_written(
    make_line: Any, strict_policy: Any, change: dict[str, Any], words: str
) -> None:
    line = make_line(activate=False)
    with pytest.raises(LineError, match=words):
        register(line, **change)
    assert not RealNameRegistration.objects.exists()
    assert not AuditEntry.objects.filter(action="line.real_name_register").exists()


def test_a_line_is_registered_once(make_line: Any, strict_policy: Any) -> None:
    line = make_line(activate=False)
    register(line)
    with pytest.raises(LineError, match="already registered"):
        register(line, full_name="Someone Else")
    assert RealNameRegistration.objects.count() == 1


def test_lines_under_other_policies_activate_without_registration(make_line: Any) -> None:
    assert make_line().status == LineStatus.ACTIVE


@pytest.fixture
def support(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("support", "s@example.com", "pw", is_staff=True)


def test_staff_without_the_permission_cannot_see_registrations(
    make_line: Any, strict_policy: Any, support: Any
) -> None:
    registration = register(make_line(activate=False))
    client = Client()
    client.force_login(support)
    url = reverse("admin:lines_realnameregistration_change", args=[registration.pk])
    assert client.get(url).status_code == 403
    assert not AuditEntry.objects.filter(action__startswith="real_name.").exists()


def test_each_look_at_a_registration_is_audited(
    make_line: Any, strict_policy: Any, support: Any
) -> None:
    registration = register(make_line(activate=False))
    support.user_permissions.add(Permission.objects.get(codename="view_realnameregistration"))
    client = Client()
    client.force_login(support)
    response = client.get(
        reverse("admin:lines_realnameregistration_change", args=[registration.pk])
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "****4567" in html and "A123456" not in html
    entry = AuditEntry.objects.get(action="real_name.view")
    assert (entry.actor, entry.target) == ("staff:support", f"real_name:{registration.pk}")
    client.get(reverse("admin:lines_realnameregistration_changelist"))
    assert AuditEntry.objects.filter(action="real_name.list").count() == 1


def test_staff_register_through_the_back_office_form(
    make_line: Any, strict_policy: Any, django_user_model: Any
) -> None:
    line = make_line(activate=False)
    boss = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    client = Client()
    client.force_login(boss)
    url = reverse("admin:lines_realnameregistration_add")
    form = {
        "line_iccid": line.iccid,
        "full_name": "Chan Tai Man",
        "document_type": "hkid",
        "document_number": "12",
    }
    # a bad number is a form error, nothing written
    response = client.post(url, form)
    assert response.status_code == 200 and "5 to 30" in response.content.decode()
    assert not RealNameRegistration.objects.exists()
    # an unknown line is a form error too
    response = client.post(url, {**form, "line_iccid": "89852000000000000000"})
    assert response.status_code == 200
    assert not RealNameRegistration.objects.exists()
    # a good one registers the line
    response = client.post(url, {**form, "document_number": "A123456(7)"})
    assert response.status_code == 302, response.content.decode()[:2000]
    registration = RealNameRegistration.objects.get()
    assert registration.line == line and registration.registered_by == "staff:boss"
