"""Running a torture from outside the torture database: the database, the
children's environment, and the report both commands print.

Like `leb bench` and `leb simulate`, nothing here touches the torture
database through Django: seeding, the workers and the checks run in spawned
processes that Django was set up for it from the start.
"""

from __future__ import annotations

import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from leb.ops.bench import dbadmin
from leb.ops.bench.procs import BenchError, call_in_child, environment, run_workers

from .checks import Checked
from .race import Op, Settings, draw_operations


class TortureError(BenchError):
    """A torture could not run (wrong database, a process that never came up)."""


def require_postgres(database_url: str) -> None:
    if dbadmin.is_sqlite(database_url):
        raise TortureError(
            "the torture runs need PostgreSQL: SQLite serialises every writer, so "
            "nothing would race (give --database-url postgres://…/leb_torture)"
        )


def recreate(database_url: str) -> None:
    """Drop and create the database, which must say it is for torture."""
    require_postgres(database_url)
    name = str(dbadmin.parse(database_url)["NAME"])
    if "torture" not in name:
        raise TortureError(
            f"refusing to drop database {name!r}: use a database whose name contains 'torture'"
        )
    dbadmin.drop_and_create(database_url)
    call_in_child(database_url, "leb.ops.bench.procs:migrate")


def child_environment(var_dir: str) -> dict[str, str]:
    """What every process of a run shares: one webhook secret and one set of
    peppers (each spawned process gets its own secret key, from which they
    would otherwise be derived), message backends that keep what they send,
    and a private var/ folder."""
    os.makedirs(os.path.join(var_dir, "static"), exist_ok=True)
    return {
        "LEB_PAYMENTS_SANDBOX_WEBHOOK_SECRET": secrets.token_hex(24),
        "LEB_VOUCHER_PIN_PEPPER": secrets.token_hex(24),
        "LEB_AGENTS_KEY_PEPPER": secrets.token_hex(24),
        "LEB_REAL_NAME_PEPPER": secrets.token_hex(24),
        "LEB_CACHE_BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LEB_SMS_BACKEND": "leb.sms.backends.locmem.SmsBackend",
        "LEB_EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "LEB_VAR_DIR": var_dir,
        "LEB_LOG_LEVEL": "CRITICAL",
    }


@dataclass
class Report:
    title: str
    command: str
    attempts: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    def add_checks(self, checked: Checked) -> None:
        self.counts.update(checked.counts)
        self.violations.extend(checked.violations)


def _table(rows: list[tuple[str, str]]) -> list[str]:
    width = max((len(name) for name, _value in rows), default=0)
    return [f"  {name.ljust(width)}  {value:>10}" for name, value in rows]


def render(report: Report) -> str:
    lines = [report.title, f"  {report.command}", ""]
    # "kind|outcome" counts per operation; a key without "|" counts
    # something across operations (the retries).
    plain = sorted((key, n) for key, n in report.outcomes.items() if "|" not in key)
    if report.attempts:
        lines.append("Operations (attempts → outcomes)")
        kinds = sorted(
            {key.split("|", 1)[0] for key in report.outcomes if "|" in key} | set(report.attempts)
        )
        for kind in kinds:
            attempted = report.attempts.get(kind)
            lines.append(
                f"  {kind}: {attempted:,} attempted" if attempted else f"  {kind} (each copy):"
            )
            outcomes = sorted(
                (key.split("|", 1)[1], n)
                for key, n in report.outcomes.items()
                if key.split("|", 1)[0] == kind
            )
            lines += ["  " + row for row in _table([(name, f"{n:,}") for name, n in outcomes])]
        lines.append("")
    if plain:
        lines.append("Retries")
        lines += _table([(name, f"{n:,}") for name, n in plain])
        lines.append("")
    lines.append("Checks")
    lines += _table([(name, f"{value:,}") for name, value in report.counts.items()])
    lines.append("")
    lines.append(f"Wall time {report.seconds:.1f} s; load average {report.load}")
    if report.violations:
        lines.append(f"VIOLATIONS ({len(report.violations)}):")
        lines += [f"  - {violation}" for violation in report.violations]
    else:
        lines.append("OK: nothing lost, nothing credited twice, books and audit chain verify.")
    if report.errors:
        lines.append("first errors:")
    for error in report.errors[:5]:
        lines.append("  " + error.replace("\n", "\n  "))
    return "\n".join(lines)


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "?"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


# --- The race ---------------------------------------------------------------------------


def check_race_in_child(world: Any) -> Checked:
    from .checks import check_all
    from .race import check_autokeep

    checked = check_all()
    doubled = check_autokeep(world)
    checked.count("auto-keep lines topped up twice", len(doubled))
    checked.violations.extend(doubled)
    return checked


def run_race(database_url: str, settings: Settings, *, var_dir: str) -> Report:
    """Seed, race, check. `database_url` is an empty, migrated database."""
    require_postgres(database_url)
    report = Report(
        title="leb torture race",
        command=(
            f"leb torture race --processes {settings.processes} "
            f"--operations {settings.operations} --seed {settings.seed}"
        ),
    )
    started = time.monotonic()
    with environment(child_environment(var_dir)):
        world = call_in_child(
            database_url,
            "leb.torture.world:seed_race_world",
            settings.lines,
            settings.autokeep,
            settings.vouchers,
            settings.agent_sales,
            settings.promotion_uses,
        )
        ops = draw_operations(settings, world)
        report.attempts = Counter(op.kind for op in ops)
        shares: list[list[Op]] = [ops[i :: settings.processes] for i in range(settings.processes)]
        jobs = [{"world": world, "ops": share} for share in shares if share]
        ran = run_workers(database_url, "leb.torture.race:worker", jobs)
        per_key: dict[str, set[str]] = {}
        for result in ran.results:
            report.outcomes.update(result["tally"])
            report.errors.extend(result["errors"])
            for key, ids in result["orders_per_key"].items():
                per_key.setdefault(key, set()).update(ids)
        checked = call_in_child(database_url, "leb.torture.runs:check_race_in_child", world)
    report.add_checks(checked)
    doubled_keys = sorted(key for key, ids in per_key.items() if len(ids) > 1)
    report.counts["Idempotency-Keys answered with two orders"] = len(doubled_keys)
    if doubled_keys:
        report.violations.append(f"one Idempotency-Key, several orders: {doubled_keys[:5]}")
    errors = sum(n for key, n in report.outcomes.items() if key.endswith("|error"))
    report.counts["unexpected errors (5xx, exceptions)"] = errors
    if errors:
        report.violations.append(f"{errors} operations ended in an unexpected error")
    report.seconds = time.monotonic() - started
    report.load = load_average()
    return report
