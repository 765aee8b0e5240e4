"""Importing lines in the back office: a preview of every bad row first, then
exactly the previewed rows, through the CLI's own parser, validator and writer."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import translation

from leb.audit.models import AuditAction, AuditEntry
from leb.backoffice.roles import ADMIN, FINANCE, SUPPORT
from leb.lines import import_admin
from leb.lines.models import Line, LineEvent
from leb.lines.tests.test_import import HEADER, ac, iccid, msisdn, row

pytestmark = pytest.mark.django_db

IMPORT = "admin:lines_line_import"
CONFIRM = "admin:lines_line_import_confirm"


def staff_client(django_user_model: Any, role: str | None, name: str = "") -> Client:
    user = django_user_model.objects.create_user(
        name or f"staff-{role or 'none'}", password="x-unused-9", is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_(django_user_model: Any) -> Client:
    return staff_client(django_user_model, ADMIN, "importer")


def csv_file(*lines: str, name: str = "stock.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, ("\n".join(lines) + "\n").encode(), "text/csv")


def upload(client: Client, file: Any, policy: str = "hk-test", currency: str = "hkd") -> Any:
    return client.post(reverse(IMPORT), {"file": file, "policy": policy, "currency": currency})


def token_of(response: Any) -> str:
    found = re.search(r'name="token" value="([^"]+)"', response.content.decode())
    assert found, response.content.decode()
    return found.group(1)


BAD_FILE = (
    HEADER,
    row(1),
    f"{iccid(2)},not a number,{ac(2)},",
    row(3),
    f"{iccid(4)},{msisdn(4)},<script>alert(1)</script>,",
)


def test_the_line_list_has_an_import_button_for_who_may_import(
    admin_client_: Client, django_user_model: Any
) -> None:
    url = reverse(IMPORT)
    assert url in admin_client_.get(reverse("admin:lines_line_changelist")).content.decode()
    support = staff_client(django_user_model, SUPPORT)
    assert url not in support.get(reverse("admin:lines_line_changelist")).content.decode()


def test_the_preview_lists_every_bad_row_and_writes_nothing(
    admin_client_: Client, hk_policy: Any
) -> None:
    # when a file with two bad rows is checked
    response = upload(admin_client_, csv_file(*BAD_FILE))

    # then the page counts good and bad rows and lists each bad one with its reason
    assert response.status_code == 200
    page = response.content.decode()
    assert "4 rows: 2 good, 2 bad." in page
    errors = re.findall(r'<tr class="import-error"><td>(\d+)</td><td>([^<]*)</td>', page)
    assert errors == [("3", "msisdn"), ("5", "activation_code")]
    assert "not a number" in page
    assert "An activation code looks like 1$SM-DP+ address$matching ID." in page
    assert "Import only the 2 good rows" in page
    assert 'value="all"' not in page
    # and nothing was written
    assert not Line.objects.exists()
    assert not AuditEntry.objects.filter(action=AuditAction.LINE_IMPORT).exists()


def test_a_script_in_a_cell_is_shown_escaped(admin_client_: Client, hk_policy: Any) -> None:
    page = upload(admin_client_, csv_file(*BAD_FILE)).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_confirming_imports_exactly_the_previewed_rows_audited(
    admin_client_: Client, hk_policy: Any
) -> None:
    # given a preview of a good file
    preview = upload(admin_client_, csv_file(HEADER, row(1), row(2), row(3)))
    assert "Import 3 lines" in preview.content.decode()

    # when the staff member confirms
    response = admin_client_.post(reverse(CONFIRM), {"token": token_of(preview), "mode": "all"})

    # then the three lines exist, made by the CLI's writer, in the currency given
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:lines_line_changelist")
    lines = Line.objects.order_by("iccid")
    assert [line.iccid for line in lines] == [iccid(1), iccid(2), iccid(3)]
    assert {line.currency for line in lines} == {"HKD"}
    assert {line.policy_id for line in lines} == {hk_policy.pk}
    assert set(LineEvent.objects.values_list("actor", flat=True)) == {"staff:importer"}
    # and once in the audit log
    entry = AuditEntry.objects.get(action=AuditAction.LINE_IMPORT)
    assert entry.actor == "staff:importer"
    assert entry.data["imported"] == 3
    assert entry.data["file"] == "stock.csv"
    # and nothing is left waiting on disk
    assert not list(import_admin.import_dir().glob("*"))


def test_partial_import_takes_only_the_good_rows(admin_client_: Client, hk_policy: Any) -> None:
    preview = upload(admin_client_, csv_file(*BAD_FILE))
    token = token_of(preview)

    # importing all rows is refused while bad rows are present
    refused = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert "The file has bad rows" in refused.content.decode()
    assert not Line.objects.exists()

    # and importing only the good rows takes lines 2 and 4 of the file
    response = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "partial"})
    assert response.status_code == 302
    assert sorted(Line.objects.values_list("iccid", flat=True)) == [iccid(1), iccid(3)]
    entry = AuditEntry.objects.get(action=AuditAction.LINE_IMPORT)
    assert entry.data["skipped_lines"] == [3, 5]


def test_a_double_confirm_imports_once(admin_client_: Client, hk_policy: Any) -> None:
    token = token_of(upload(admin_client_, csv_file(HEADER, row(1), row(2))))
    first = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"})
    second = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert first.status_code == 302
    assert "already imported or has expired" in second.content.decode()
    assert Line.objects.count() == 2
    assert AuditEntry.objects.filter(action=AuditAction.LINE_IMPORT).count() == 1


def test_a_tampered_token_is_refused(admin_client_: Client, hk_policy: Any) -> None:
    token = token_of(upload(admin_client_, csv_file(HEADER, row(1))))
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    response = admin_client_.post(reverse(CONFIRM), {"token": forged, "mode": "all"}, follow=True)
    assert "This preview is not valid" in response.content.decode()
    assert not Line.objects.exists()


def test_a_changed_stored_file_is_refused(admin_client_: Client, hk_policy: Any) -> None:
    token = token_of(upload(admin_client_, csv_file(HEADER, row(1))))
    (stored,) = import_admin.import_dir().glob("*.csv")
    stored.write_text("\n".join([HEADER, row(1), row(2)]) + "\n")
    response = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert "does not match its preview" in response.content.decode()
    assert not Line.objects.exists()


def test_an_expired_preview_is_refused(
    admin_client_: Client, hk_policy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = token_of(upload(admin_client_, csv_file(HEADER, row(1))))
    monkeypatch.setattr(import_admin, "PREVIEW_MAX_AGE", -1)
    response = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert "This preview has expired" in response.content.decode()
    assert not Line.objects.exists()


def test_another_staff_members_preview_is_refused(
    admin_client_: Client, hk_policy: Any, django_user_model: Any
) -> None:
    token = token_of(upload(admin_client_, csv_file(HEADER, row(1))))
    other = staff_client(django_user_model, ADMIN, "other-admin")
    response = other.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert "This preview is not valid" in response.content.decode()
    assert not Line.objects.exists()


def test_a_token_for_a_preview_not_in_the_session_is_refused(
    admin_client_: Client, hk_policy: Any, django_user_model: Any
) -> None:
    # a validly signed token for the same user, but no preview this session made
    user = django_user_model.objects.get(username="importer")
    token = signing.dumps(
        {
            "id": "A" * 22,
            "sha256": "0" * 64,
            "name": "x.csv",
            "policy": "hk-test",
            "currency": "HKD",
            "user": user.pk,
            "bad": [],
            "good": 1,
        },
        salt=import_admin._SALT,
        compress=True,
    )
    response = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"}, follow=True)
    assert "already imported or has expired" in response.content.decode()


def test_rows_taken_after_the_preview_show_a_new_preview_and_import_nothing(
    admin_client_: Client, hk_policy: Any
) -> None:
    from leb.lines.actions import do_create_line

    token = token_of(upload(admin_client_, csv_file(HEADER, row(1), row(2))))
    do_create_line(iccid=iccid(2), policy=hk_policy, currency="HKD", actor="test")
    response = admin_client_.post(reverse(CONFIRM), {"token": token, "mode": "all"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "changed since the preview" in page
    assert "2 rows: 1 good, 1 bad." in page
    assert Line.objects.count() == 1


@pytest.mark.parametrize(
    ("file", "policy", "currency", "message"),
    [
        (
            SimpleUploadedFile("stock.xlsx", b"PK\x03\x04", "application/octet-stream"),
            "hk-test",
            "HKD",
            "Choose a CSV file",
        ),
        (
            SimpleUploadedFile("stock.csv", b"iccid,msisdn,activation_code\n\xff\xfe,1,2\n"),
            "hk-test",
            "HKD",
            "line 2: the file is not UTF-8 text.",
        ),
        (SimpleUploadedFile("stock.csv", b""), "hk-test", "HKD", "The submitted file is empty."),
        (
            SimpleUploadedFile("stock.csv", b"\n\n"),
            "hk-test",
            "HKD",
            "The file is empty: it needs a header row.",
        ),
        (
            SimpleUploadedFile("stock.csv", b"iccid,activation_code\n1,2\n"),
            "hk-test",
            "HKD",
            "Missing column(s): msisdn.",
        ),
        (
            SimpleUploadedFile("stock.csv", b"iccid,msisdn,activation_code\n"),
            "nope",
            "HKD",
            "Unknown number policy nope. Known policies: hk-test.",
        ),
        (
            SimpleUploadedFile("stock.csv", b"iccid,msisdn,activation_code\n"),
            "hk-test",
            "XYZ",
            "XYZ is not an ISO 4217 currency code.",
        ),
    ],
    ids=["not-csv", "not-utf8", "no-bytes", "blank", "missing-column", "policy", "currency"],
)
def test_a_refused_file_shows_the_reason_on_the_form_and_writes_nothing(
    admin_client_: Client, hk_policy: Any, file: Any, policy: str, currency: str, message: str
) -> None:
    response = upload(admin_client_, file, policy=policy, currency=currency)
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert 'name="token"' not in page
    assert not Line.objects.exists()
    assert not import_admin.import_dir().exists() or not list(import_admin.import_dir().glob("*"))


def test_the_preview_speaks_chinese(admin_client_: Client, hk_policy: Any) -> None:
    with translation.override("zh-hans"):
        response = admin_client_.post(
            reverse(IMPORT),
            {"file": csv_file(*BAD_FILE), "policy": "hk-test", "currency": "HKD"},
            HTTP_ACCEPT_LANGUAGE="zh-hans",
        )
    page = response.content.decode()
    assert "<title>导入号卡 |" in page
    assert "共 4 行：2 行正确，2 行有误。" in page  # noqa: RUF001 - Chinese punctuation is meant
    assert "仅导入 2 行正确的行" in page


@pytest.mark.parametrize("role", (SUPPORT, FINANCE, ADMIN, None))
def test_only_who_may_add_lines_may_import(
    role: str | None, django_user_model: Any, hk_policy: Any
) -> None:
    client = staff_client(django_user_model, role)
    allowed = role == ADMIN
    assert client.get(reverse(IMPORT)).status_code == (200 if allowed else 403)
    assert upload(client, csv_file(HEADER, row(1))).status_code == (200 if allowed else 403)
    confirm = client.post(reverse(CONFIRM), {"token": "x", "mode": "all"})
    assert confirm.status_code == (302 if allowed else 403)
    assert not Line.objects.exists()
