"""Where export files live: LEB_EXPORTS_DIR, by default LEB_VAR_DIR/exports."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def exports_dir() -> Path:
    configured = getattr(settings, "EXPORTS_DIR", "")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "exports"


def path_of(file_name: str) -> Path | None:
    """The file of a job, or None for a name that would leave the folder."""
    if not file_name or "/" in file_name or "\\" in file_name or file_name.startswith("."):
        return None
    return exports_dir() / file_name
