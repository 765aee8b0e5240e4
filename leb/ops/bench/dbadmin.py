"""Creating the benchmark databases and running pgbench, without Django:
the process that calls these is not connected to the benchmark database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import dj_database_url

from .procs import BenchError, call_in_child

# The only databases the benchmarks create or drop.
BENCH_DATABASES = (
    "leb_bench",
    "leb_pgbench",
    "leb_bench_sweep",
    "leb_bench_agents",
    "leb_pgbench_agents",
    "leb_bench_http",
    # `leb bench all`: migrated once, then copied for each benchmark.
    "leb_bench_template",
)
TEMPLATE_DATABASE = "leb_bench_template"


def parse(database_url: str) -> dict[str, Any]:
    return dict(dj_database_url.parse(database_url))


def is_sqlite(database_url: str) -> bool:
    return str(parse(database_url)["ENGINE"]).endswith("sqlite3")


def with_database(database_url: str, name: str) -> str:
    """The same server as `database_url`, database `name`."""
    if name not in BENCH_DATABASES:
        raise BenchError(
            f"refusing to use database {name!r}: benchmarks only use {BENCH_DATABASES}"
        )
    settings = parse(database_url)
    user = quote(settings.get("USER") or "", safe="")
    password = quote(settings.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings.get("HOST") or "localhost"
    port = f":{settings['PORT']}" if settings.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{name}"


def _admin_connection(database_url: str) -> Any:
    import psycopg

    settings = parse(database_url)
    return psycopg.connect(
        dbname="postgres",
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
    )


def recreate_postgres(database_url: str, template: str | None = None) -> None:
    """Drop and create the (benchmark) database `database_url` names, empty
    or as a copy of the benchmark database `template`."""
    name = parse(database_url)["NAME"]
    if name not in BENCH_DATABASES or (template is not None and template not in BENCH_DATABASES):
        raise BenchError(
            f"refusing to drop database {name!r}: benchmarks only use {BENCH_DATABASES}"
        )
    drop_and_create(database_url, template)


def drop_and_create(database_url: str, template: str | None = None) -> None:
    """Drop (closing its sessions) and create the database `database_url`
    names, empty or as a copy of `template`. The caller has checked that the
    name is one of its own scratch databases."""
    name = parse(database_url)["NAME"]
    with _admin_connection(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')


def drop_postgres(database_url: str) -> None:
    name = parse(database_url)["NAME"]
    if name not in BENCH_DATABASES:
        raise BenchError(
            f"refusing to drop database {name!r}: benchmarks only use {BENCH_DATABASES}"
        )
    with _admin_connection(database_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_database_exists(database_url: str) -> bool:
    name = parse(database_url)["NAME"]
    with _admin_connection(database_url) as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def postgres_version(database_url: str) -> str:
    with _admin_connection(database_url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def recreate_sqlite(database_url: str) -> None:
    path = Path(parse(database_url)["NAME"])
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)


def fresh_database(database_url: str, template: str | None = None) -> None:
    """An empty, migrated database. Migrations run in a child process that
    Django was set up for `database_url` from the start. On PostgreSQL with
    `template` (a database migrated the same way in this run), the database
    is a copy of it instead, which takes a second instead of a migration."""
    if is_sqlite(database_url):
        recreate_sqlite(database_url)
    elif template:
        recreate_postgres(database_url, template)
        return
    else:
        recreate_postgres(database_url)
    call_in_child(database_url, "leb.ops.bench.procs:migrate")


@dataclass
class PgbenchResult:
    clients: int
    seconds: int
    tps: float
    transactions: int
    output: str


def _pg_env(database_url: str) -> dict[str, str]:
    settings = parse(database_url)
    env = dict(os.environ)
    if settings.get("PASSWORD"):
        env["PGPASSWORD"] = str(settings["PASSWORD"])
    return env


def _pg_args(database_url: str) -> list[str]:
    settings = parse(database_url)
    args = []
    if settings.get("HOST"):
        args += ["-h", str(settings["HOST"])]
    if settings.get("PORT"):
        args += ["-p", str(settings["PORT"])]
    if settings.get("USER"):
        args += ["-U", str(settings["USER"])]
    return args


def run_pgbench(
    database_url: str,
    *,
    clients: int,
    seconds: int = 15,
    scale: int = 1,
    database: str = "leb_pgbench",
) -> PgbenchResult:
    """pgbench's TPC-B-like transaction on its own database (`database`) of the
    same server."""
    pgbench = shutil.which("pgbench") or "/usr/bin/pgbench"
    if not Path(pgbench).exists():
        raise BenchError("pgbench is not installed")
    target = with_database(database_url, database)
    recreate_postgres(target)
    name = database
    env = _pg_env(target)
    base = [pgbench, *_pg_args(target)]
    subprocess.run(  # noqa: S603
        [*base, "-i", "-s", str(scale), "-q", name], env=env, check=True, capture_output=True
    )
    done = subprocess.run(  # noqa: S603
        [
            *base,
            "-b",
            "tpcb-like",
            "-c",
            str(clients),
            "-j",
            str(clients),
            "-T",
            str(seconds),
            "-n",
            name,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    output = done.stdout
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    count = re.search(r"number of transactions actually processed: (\d+)", output)
    if not tps:
        raise BenchError(f"could not read pgbench's tps from:\n{output}\n{done.stderr}")
    return PgbenchResult(
        clients=clients,
        seconds=seconds,
        tps=float(tps.group(1)),
        transactions=int(count.group(1)) if count else 0,
        output=output,
    )
