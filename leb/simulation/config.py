"""What a simulation run is asked to do. Imports nothing from Django: it is
handed to a spawned process before Django is set up there."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from .population import Shares

DEFAULT_START = datetime(2027, 1, 4, 2, 0, tzinfo=UTC)  # 10:00 in Hong Kong


@dataclass
class Config:
    lines: int = 10_000
    years: int = 3
    seed: int = 1
    step_hours: float = 24.0
    start: datetime = DEFAULT_START
    shares: Shares = field(default_factory=Shares)
    progress: bool = True
    database: str = ""
