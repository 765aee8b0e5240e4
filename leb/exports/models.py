from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ExportFormat(models.TextChoices):
    CSV = "csv", _("CSV (UTF-8)")
    XLSX = "xlsx", _("Excel workbook (XLSX)")


class ExportJob(models.Model):
    """One requested export: what, with which filters, by whom, how far along,
    and the file it made (under LEB_EXPORTS_DIR) until it expires."""

    public_id = models.UUIDField(_("reference"), default=uuid.uuid4, unique=True, editable=False)
    dataset = models.CharField(_("dataset"), max_length=60)
    format = models.CharField(_("format"), max_length=8, choices=ExportFormat.choices)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    # Headings and translated values are written in the requester's language.
    language = models.CharField(_("language"), max_length=16, default="en")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="export_jobs",
        verbose_name=_("requested by"),
    )
    requested_at = models.DateTimeField(_("requested"))
    status = models.CharField(
        _("status"), max_length=10, choices=ExportStatus.choices, default=ExportStatus.QUEUED
    )
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    rows_done = models.PositiveIntegerField(_("rows written"), default=0)
    rows_total = models.PositiveIntegerField(_("rows in all"), null=True, blank=True)
    # A file name inside LEB_EXPORTS_DIR, never a path from outside.
    file_name = models.CharField(_("file"), max_length=100, blank=True)
    file_size = models.PositiveBigIntegerField(_("file size (bytes)"), null=True, blank=True)
    sha256 = models.CharField(_("SHA-256 checksum"), max_length=64, blank=True)
    expires_at = models.DateTimeField(_("deleted after"), db_index=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        ordering = ["-requested_at", "-pk"]
        verbose_name = _("export")
        verbose_name_plural = _("exports")
        indexes = [models.Index(fields=["requested_by", "-requested_at"], name="exports_user_idx")]
        # One permission per dataset kind; roles.py gives them to the roles.
        permissions = [
            ("export_orders", _("Can export top-up orders")),
            ("export_receipts", _("Can export receipts")),
            ("export_ledger", _("Can export ledger transfers")),
            ("export_agent_statements", _("Can export agents' statements")),
            ("export_settlement", _("Can export settlement runs and mismatches")),
        ]

    def __str__(self) -> str:
        return f"{self.dataset} {self.format} {self.public_id}"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        if not self.rows_total:
            return 0
        return min(100, self.rows_done * 100 // self.rows_total)
