"""Lines import in the back office: upload a supplier's CSV file, see every bad
row, then confirm. The file is read and checked by the CLI's own parser and
validator (`importer`) and written by its `import_rows`.

Between the preview and the confirmation the uploaded bytes wait under
VAR_DIR, named by a random id; the preview's form carries a signed token with
that id and the bytes' SHA-256, and the id is also kept in the staff member's
session. Confirming takes the file away first (a rename, which only one
request can win), so a double submit imports once, and re-checks that the
bytes still hash to what was previewed: nothing is ever re-uploaded.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from leb.audit.actions import record
from leb.audit.models import AuditAction
from leb.common.admin import staff_actor

from . import importer
from .models import NumberPolicy

IMPORT_PERMISSION = "lines.add_line"
PREVIEW_MAX_AGE = 60 * 60  # seconds between the preview and its confirmation
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
_SALT = "leb.lines.import-preview"
_SESSION_KEY = "leb_line_import_previews"
_SESSION_KEEP = 10
_ID = re.compile(r"[A-Za-z0-9_-]{22}\Z")
_EXTENSIONS = (".csv", ".txt")
TEMPLATE = "admin/lines/line/import.html"


def import_dir() -> Path:
    return Path(settings.VAR_DIR) / "line-imports"


class PreviewGone(Exception):
    """The confirmation does not match a preview that can still be imported."""


@dataclass(frozen=True)
class Preview:
    id: str
    sha256: str
    name: str
    policy: str
    currency: str
    bad: list[int]
    good: int


def _forget_old_files(directory: Path) -> None:
    limit = time.time() - 2 * PREVIEW_MAX_AGE
    for path in directory.glob("*.csv"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
        except OSError:
            pass


def store_preview(
    request: HttpRequest,
    content: bytes,
    *,
    name: str,
    policy: str,
    currency: str,
    validation: importer.Validation,
) -> str:
    """Keep `content` for the confirmation; returns the token the form carries."""
    directory = import_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    _forget_old_files(directory)
    preview_id = secrets.token_urlsafe(16)
    fd = os.open(directory / f"{preview_id}.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    kept = [*request.session.get(_SESSION_KEY, []), preview_id][-_SESSION_KEEP:]
    request.session[_SESSION_KEY] = kept
    return signing.dumps(
        {
            "id": preview_id,
            "sha256": hashlib.sha256(content).hexdigest(),
            "name": name,
            "policy": policy,
            "currency": currency,
            "user": request.user.pk,
            "bad": validation.bad_lines,
            "good": len(validation.good),
        },
        salt=_SALT,
        compress=True,
    )


def read_token(request: HttpRequest, token: str) -> Preview:
    try:
        data = signing.loads(token, salt=_SALT, max_age=PREVIEW_MAX_AGE)
    except signing.SignatureExpired:
        raise PreviewGone(
            _("This preview has expired. Nothing was imported; upload the file again.")
        ) from None
    except signing.BadSignature:
        raise PreviewGone(
            _("This preview is not valid. Nothing was imported; upload the file again.")
        ) from None
    if (
        not isinstance(data, dict)
        or not _ID.match(str(data.get("id", "")))
        or data.get("user") != request.user.pk
    ):
        raise PreviewGone(
            _("This preview is not valid. Nothing was imported; upload the file again.")
        )
    if data["id"] not in request.session.get(_SESSION_KEY, []):
        raise PreviewGone(_("This preview was already imported or has expired."))
    return Preview(
        id=data["id"],
        sha256=str(data["sha256"]),
        name=str(data["name"]),
        policy=str(data["policy"]),
        currency=str(data["currency"]),
        bad=[int(line) for line in data["bad"]],
        good=int(data["good"]),
    )


def take_file(request: HttpRequest, preview: Preview) -> bytes:
    """The previewed bytes, removed from storage: only one request gets them."""
    path = import_dir() / f"{preview.id}.csv"
    taken = path.with_suffix(".taken")
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        raise PreviewGone(_("This preview was already imported or has expired.")) from None
    try:
        content = taken.read_bytes()
    finally:
        taken.unlink(missing_ok=True)
    request.session[_SESSION_KEY] = [
        kept for kept in request.session.get(_SESSION_KEY, []) if kept != preview.id
    ]
    if not secrets.compare_digest(hashlib.sha256(content).hexdigest(), preview.sha256):
        raise PreviewGone(
            _("The stored file does not match its preview. Nothing was imported; upload it again.")
        )
    return content


class LineImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "UTF-8 text with a header row: iccid, msisdn, activation_code and optionally eid."
        ),
    )
    # Checked by the importer's resolve_policy, so an unknown code gets its message.
    policy = forms.CharField(label=gettext_lazy("number policy"), widget=forms.Select)
    currency = forms.CharField(label=gettext_lazy("currency"), max_length=3, initial="HKD")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        widget = self.fields["policy"].widget
        assert isinstance(widget, forms.Select)
        widget.choices = [("", "---------")] + [
            (code, f"{code} - {name}")
            for code, name in NumberPolicy.objects.order_by("code").values_list("code", "name")
        ]
        self.content = b""
        self.parsed: importer.ParsedFile | None = None

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if not str(upload.name).lower().endswith(_EXTENSIONS):
            raise ValidationError(_("Choose a CSV file (a name ending in .csv)."))
        if upload.size > MAX_UPLOAD_BYTES:
            raise ValidationError(
                _("The file is larger than %(size)d MB; split it.")
                % {"size": MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
        self.content = b"".join(upload.chunks())
        try:
            self.parsed = importer.parse_csv(importer.decode_csv(self.content))
        except importer.ImportRefused as exc:
            raise ValidationError(str(exc)) from exc
        return upload

    def clean_policy(self) -> str:
        code = self.cleaned_data["policy"]
        try:
            return importer.resolve_policy(code).code
        except importer.ImportRefused as exc:
            raise ValidationError(str(exc)) from exc

    def clean_currency(self) -> str:
        try:
            return importer.normalize_currency(self.cleaned_data["currency"])
        except importer.ImportRefused as exc:
            raise ValidationError(str(exc)) from exc


def _bad_rows(parsed: importer.ParsedFile, validation: importer.Validation) -> list[dict[str, Any]]:
    by_line = {row.line: row for row in parsed.rows}
    rows = []
    for error in validation.errors:
        raw = by_line.get(error.line)
        values = raw.values if raw else {}
        if error.column:
            value = values.get(error.column, "")
        else:
            value = ", ".join(values.get(name, "") for name in values)
        rows.append(
            {"line": error.line, "column": error.column, "value": value, "reason": error.message}
        )
    return rows


class LineImportMixin:
    """The line admin's "Import lines" pages (`import/`, `import/confirm/`)."""

    admin_site: Any
    opts: Any

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(IMPORT_PERMISSION)

    def _import_context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "title": _("Import lines"),
            "opts": self.opts,
            "max_age_minutes": PREVIEW_MAX_AGE // 60,
            **extra,
        }

    def _preview(
        self,
        request: HttpRequest,
        *,
        content: bytes,
        name: str,
        policy: str,
        currency: str,
        parsed: importer.ParsedFile,
        form: LineImportForm | None = None,
        notice: str = "",
    ) -> TemplateResponse:
        validation = importer.validate_rows(parsed.rows, expected_fields=parsed.expected_fields)
        token = store_preview(
            request, content, name=name, policy=policy, currency=currency, validation=validation
        )
        good = len(validation.good)
        preview = {
            "token": token,
            "name": name,
            "policy": policy,
            "currency": currency,
            "total": len(parsed.rows),
            "good": good,
            "bad": len(validation.bad_lines),
            "errors": _bad_rows(parsed, validation),
            "ignored_columns": ", ".join(parsed.ignored_columns),
            "import_all": ngettext("Import %(count)d line", "Import %(count)d lines", good)
            % {"count": good},
            "import_good": ngettext(
                "Import only the %(count)d good row", "Import only the %(count)d good rows", good
            )
            % {"count": good},
        }
        return TemplateResponse(
            request,
            TEMPLATE,
            self._import_context(request, form=form, preview=preview, notice=notice),
        )

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = LineImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid() and form.parsed is not None:
            return self._preview(
                request,
                content=form.content,
                name=os.path.basename(str(form.cleaned_data["file"].name))[:200],
                policy=form.cleaned_data["policy"],
                currency=form.cleaned_data["currency"],
                parsed=form.parsed,
                form=form,
            )
        return TemplateResponse(request, TEMPLATE, self._import_context(request, form=form))

    def import_confirm_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_permission(request):
            raise PermissionDenied
        back = HttpResponseRedirect(reverse("admin:lines_line_import"))
        if request.method != "POST":
            return back
        partial = request.POST.get("mode") == "partial"
        try:
            preview = read_token(request, request.POST.get("token", ""))
            if preview.bad and not partial:
                raise PreviewGone(
                    _("The file has bad rows: import only the good rows, or fix the file.")
                )
            content = take_file(request, preview)
            policy = importer.resolve_policy(preview.policy)
            currency = importer.normalize_currency(preview.currency)
            parsed = importer.parse_csv(importer.decode_csv(content))
        except (PreviewGone, importer.ImportRefused) as exc:
            messages.error(request, str(exc))
            return back
        validation = importer.validate_rows(parsed.rows, expected_fields=parsed.expected_fields)
        if validation.bad_lines != preview.bad or len(validation.good) != preview.good:
            # Lines or numbers changed since the preview: show what the file is now.
            return self._preview(
                request,
                content=content,
                name=preview.name,
                policy=policy.code,
                currency=currency,
                parsed=parsed,
                notice=_(
                    "Lines or numbers changed since the preview, so nothing was imported. "
                    "Here is the file checked again."
                ),
            )
        if not validation.good:
            messages.error(request, _("No row of the file can be imported."))
            return back
        actor = staff_actor(request)
        try:
            with transaction.atomic():
                lines = importer.import_rows(
                    validation.good, policy=policy, currency=currency, actor=actor
                )
                record(
                    actor,
                    AuditAction.LINE_IMPORT,
                    f"policy:{policy.code}",
                    {
                        "file": preview.name,
                        "sha256": preview.sha256,
                        "policy": policy.code,
                        "currency": currency,
                        "imported": len(lines),
                        "skipped_lines": validation.bad_lines,
                        "first_iccid": lines[0].iccid,
                        "last_iccid": lines[-1].iccid,
                    },
                )
        except importer.RowImportFailed as exc:
            messages.error(request, _("%(error)s Nothing was imported.") % {"error": exc.error})
            return back
        messages.success(
            request,
            ngettext("Imported %(count)d line.", "Imported %(count)d lines.", len(lines))
            % {"count": len(lines)},
        )
        return HttpResponseRedirect(reverse("admin:lines_line_changelist"))
