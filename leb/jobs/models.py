from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class PeriodicJob(models.Model):
    """The persisted state of one entry of the code schedule (schedule.py).

    `next_run_at` is the claim: a scheduler enqueues the task only if its
    conditional UPDATE moved `next_run_at` forward, so several schedulers on
    several machines run each job at most once per interval."""

    name = models.CharField(_("name"), max_length=64, primary_key=True)
    task_path = models.CharField(_("task path"), max_length=255)
    interval_seconds = models.PositiveIntegerField(_("interval (seconds)"))
    next_run_at = models.DateTimeField(_("next run at"))
    last_run_at = models.DateTimeField(_("last run at"), null=True, blank=True)
    # The task backend chooses the id format, so it is stored as text.
    last_enqueued_task_id = models.CharField(_("last enqueued task id"), max_length=64, blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("periodic job")
        verbose_name_plural = _("periodic jobs")

    def __str__(self) -> str:
        return self.name
