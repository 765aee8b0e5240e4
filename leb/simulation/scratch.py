"""The database a simulation runs on: a new SQLite file in a temporary
directory, or a PostgreSQL database whose name says it is for simulations.

Like `leb bench`, the command never touches that database through Django
itself: it creates it here (no Django needed), then migrates and simulates in
spawned processes that Django was set up for it from the start.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from leb.ops.bench import dbadmin
from leb.ops.bench.procs import BenchError, call_in_child

SQLITE_NAME = "simulation.sqlite3"


class ScratchError(BenchError):
    """The scratch database could not be prepared."""


@dataclass
class Scratch:
    url: str
    # A temporary directory to remove afterwards (SQLite default only).
    directory: Path | None = None

    @property
    def vendor(self) -> str:
        return "sqlite" if dbadmin.is_sqlite(self.url) else "postgresql"

    def remove(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _check_name(database_url: str) -> None:
    if dbadmin.is_sqlite(database_url):
        path = Path(str(dbadmin.parse(database_url)["NAME"]))
        if "sim" not in path.name:
            raise ScratchError(f"refusing to recreate {path}: use a file whose name contains 'sim'")
        return
    name = str(dbadmin.parse(database_url)["NAME"])
    if "sim" not in name:
        raise ScratchError(
            f"refusing to drop database {name!r}: use a database whose name contains 'sim'"
        )


def prepare(database_url: str | None) -> Scratch:
    """An empty, migrated database: `database_url` (recreated) or a new
    SQLite file in a temporary directory."""
    if database_url:
        _check_name(database_url)
        scratch = Scratch(url=database_url)
        if dbadmin.is_sqlite(database_url):
            dbadmin.recreate_sqlite(database_url)
        else:
            dbadmin.drop_and_create(database_url)
    else:
        directory = Path(tempfile.mkdtemp(prefix="leb-simulation-"))
        scratch = Scratch(url=f"sqlite:///{directory / SQLITE_NAME}", directory=directory)
    try:
        call_in_child(scratch.url, "leb.ops.bench.procs:migrate")
    except BaseException:
        scratch.remove()
        raise
    return scratch
