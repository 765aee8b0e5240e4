"""Shared fixtures: personas, policies, plans, a line factory, an API token,
a local webhook receiver. Helpers (functions, classes) live in leb.testing."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from leb.testing import (
    FaultServer,
    HookRequest,
    HookServer,
    LoadedDemo,
    make_hk_msisdn,
    make_iccid,
    next_serial,
)


def pytest_configure(config: pytest.Config) -> None:
    # argon2 is slow on purpose (tens of milliseconds a hash), and hundreds of
    # tests create accounts: they use a fast hasher. Tests about how passwords
    # are stored carry @pytest.mark.argon2 and get the production hashers.
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # The default cache is a file folder under var/, which every test process
    # (parallel workers, a `make run` beside the suite) would share: one
    # worker's rate-limit counters and cached banners would leak into
    # another's tests. Each process gets its own memory cache instead.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"leb-tests-{os.getpid()}",
        }
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test marked own_database never reaches the suite's database (it makes
    # its own SQLite files, or needs none): it runs the same on both runs of
    # `make test`, so only the SQLite run has it.
    from django.conf import settings

    if "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        return
    once = [item for item in items if item.get_closest_marker("own_database") is not None]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [item for item in items if item.get_closest_marker("own_database") is None]


@pytest.fixture(autouse=True)
def _production_password_hashers(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("argon2") is not None:
        import leb.settings

        settings = request.getfixturevalue("settings")
        settings.PASSWORD_HASHERS = list(leb.settings.PASSWORD_HASHERS)


def pytest_sessionstart(session: pytest.Session) -> None:
    # In CI the PostgreSQL run must really be on PostgreSQL: never fall back.
    if os.environ.get("LEB_REQUIRE_POSTGRES"):
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            pytest.exit(
                f"LEB_REQUIRE_POSTGRES is set but the database engine is {engine}", returncode=3
            )
    if not hasattr(session.config, "workerinput"):
        _migrated_template.start(session.config)


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):
        _migrated_template.finish()


# --- One migration per PostgreSQL run --------------------------------------------------
#
# Migrating a PostgreSQL database takes tens of seconds; each test process
# used to migrate its own. Now the first process (xdist's controller, or the
# only one) migrates one template database with `leb migrate` while the test
# processes start and collect, and each test database is created as a copy of
# it (CREATE DATABASE ... TEMPLATE, Django's TEST["TEMPLATE"]). Django still
# runs `migrate` on each copy, which finds nothing left to apply: the schema
# is exactly the migrated one. If the template cannot be made, each process
# migrates its own database as before, and shows why that failed.


class _MigratedTemplate:
    MARKER = "LEB_TEST_TEMPLATE_MARKER"

    def __init__(self) -> None:
        self.thread: Any = None
        self.process: Any = None
        self.settings: dict[str, Any] = {}
        self.folder: Path | None = None

    def start(self, config: pytest.Config) -> None:
        import tempfile
        import threading

        from django.conf import settings

        db = settings.DATABASES["default"]
        if (
            "postgresql" not in db["ENGINE"]
            or config.getvalue("reuse_db")
            or config.getvalue("nomigrations")
            or os.environ.get(self.MARKER)
        ):
            return
        base = (db.get("TEST") or {}).get("NAME") or f"test_{db['NAME']}"
        self.settings = {**db, "NAME": f"{base}_migrated"}
        folder = self.folder = Path(tempfile.mkdtemp(prefix="leb-test-template-"))
        marker = folder / "template"
        os.environ[self.MARKER] = str(marker)  # the test processes inherit it
        self.thread = threading.Thread(target=self._build, args=(folder, marker), daemon=True)
        self.thread.start()

    def _admin(self) -> Any:
        import psycopg

        db = self.settings
        return psycopg.connect(
            dbname="postgres",
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            autocommit=True,
        )

    def _build(self, folder: Path, marker: Path) -> None:
        import subprocess
        import sys

        from leb.ops.bench.procs import url_from_settings

        name = self.settings["NAME"]
        try:
            with self._admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            env = {
                **os.environ,
                "LEB_DATABASE_URL": url_from_settings(self.settings),
                "LEB_VAR_DIR": str(folder),
            }
            self.process = subprocess.Popen(
                [sys.executable, "-m", "leb.cli", "migrate", "--no-input", "-v0"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            output, _ = self.process.communicate()
            ok = self.process.returncode == 0
        except Exception as exc:  # the test processes then migrate their own
            ok, output = False, repr(exc)
        partial = marker.with_suffix(".partial")
        partial.write_text(f"ok\n{name}" if ok else f"failed\n{output}")
        partial.rename(marker)

    def finish(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.thread is not None:
            self.thread.join(60)
            try:
                with self._admin() as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.settings["NAME"]}" WITH (FORCE)')
            except Exception:  # noqa: S110 (a leftover template is dropped by the next run)
                pass
        if self.folder is not None:
            import shutil

            shutil.rmtree(self.folder, ignore_errors=True)

    @classmethod
    def wait(cls) -> str | None:
        """The template's name once it is migrated; None without one."""
        import time

        path = os.environ.get(cls.MARKER)
        if not path:
            return None
        marker = Path(path)
        deadline = time.monotonic() + 900
        while not marker.exists():
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        status, _, detail = marker.read_text().partition("\n")
        return detail if status == "ok" else None


_migrated_template = _MigratedTemplate()


# --- Flushing after a transactional test ------------------------------------------------
#
# After each transactional test (live server, other processes) Django empties
# every table, then sends post_migrate so contenttypes, auth and the back
# office's roles write their rows again: hundreds of queries, most of the
# flush's cost. The rows those handlers write do not change within a run, so
# after the first such flush in a process they are kept, and later flushes
# empty the tables and put exactly those rows back (same ids, in one
# transaction; the foreign keys are deferred to its commit).


class _AfterFlush:
    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[str, list[str], list[tuple[Any, ...]]]]] = {}

    def take(self, alias: str) -> None:
        from django.db import connections

        connection = connections[alias]
        taken = []
        with connection.cursor() as cursor:
            for table in connection.introspection.django_table_names(only_existing=True):
                quoted = connection.ops.quote_name(table)
                cursor.execute(f"SELECT * FROM {quoted}")  # noqa: S608 (a table name)
                rows = cursor.fetchall()
                if rows:
                    columns = [column[0] for column in cursor.description]
                    taken.append((table, columns, rows))
        self.rows[alias] = taken

    def put_back(self, alias: str) -> None:
        from django.contrib.contenttypes.models import ContentType
        from django.db import connections, transaction

        connection = connections[alias]
        quote = connection.ops.quote_name
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            for table, columns, rows in self.rows[alias]:
                names = ", ".join(quote(column) for column in columns)
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(
                    f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",  # noqa: S608
                    rows,
                )
        ContentType.objects.clear_cache()


_after_flush = _AfterFlush()


@pytest.fixture(scope="session", autouse=True)
def _flush_keeps_the_post_migrate_rows() -> Iterator[None]:
    from django.core.management import call_command
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown  # type: ignore[attr-defined]

    def teardown(self: Any) -> None:
        if self.available_apps is not None or self.serialized_rollback:
            original(self)
            return
        for alias in self._databases_names(include_mirrors=False):
            first = alias not in _after_flush.rows
            call_command(
                "flush",
                verbosity=0,
                interactive=False,
                database=alias,
                reset_sequences=False,
                allow_cascade=False,
                inhibit_post_migrate=not first,
            )
            if first:
                _after_flush.take(alias)
            else:
                _after_flush.put_back(alias)

    TransactionTestCase._fixture_teardown = teardown  # type: ignore[attr-defined]
    yield
    TransactionTestCase._fixture_teardown = original  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    template = _MigratedTemplate.wait()
    if template:
        from django.conf import settings

        settings.DATABASES["default"].setdefault("TEST", {})["TEMPLATE"] = template


@pytest.fixture(autouse=True)
def _empty_cache() -> Iterator[None]:
    """Each test starts with an empty cache: no rate-limit count, cached
    banner or lockout carries over from the test before."""
    from django.core.cache import caches

    for cache in caches.all():
        cache.clear()
    yield


@pytest.fixture(autouse=True)
def _english_by_default() -> Any:
    """Each test starts in English: a request in another language must not
    leave its language active for the next test."""
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture(autouse=True)
def _private_var_dir(settings: Any, tmp_path: Any) -> None:
    """Files a test writes under VAR_DIR (demo voucher exports) go to its own
    folder, never to the project's var/."""
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture
def live_server(live_server: Any) -> Any:
    """pytest-django's live server, one request at a time on in-memory SQLite.

    There the server's threads share the test's one connection (the database
    lives in it), so two requests at once (a double click) would run inside
    one transaction and see each other's unfinished writes, which no real
    deployment does. Serialising them gives what SQLite's write lock gives a
    deployment; on PostgreSQL each request has its own connection and races
    for real."""
    thread = live_server.thread
    if thread.connections_override:
        app = thread.httpd.get_app()
        lock = threading.Lock()

        def one_at_a_time(environ: Any, start_response: Any) -> Any:
            with lock:
                return app(environ, start_response)

        thread.httpd.set_app(one_at_a_time)
    return live_server


@pytest.fixture
def now() -> datetime:
    return datetime(2026, 6, 1, 4, 0, tzinfo=UTC)


@pytest.fixture
def hk_policy(db: Any) -> Any:
    from leb.lines.models import ExtensionRule, NumberPolicy

    return NumberPolicy.objects.create(
        code="hk-test",
        name="HK test",
        first_topup_days=30,
        grace_days=30,
        suspension_days=60,
        quarantine_days=90,
        max_validity_days=365,
        extension_rule=ExtensionRule.STACK,
        restore_fee=1000,
    )


@pytest.fixture
def uk_policy(db: Any) -> Any:
    from leb.lines.models import ExtensionRule, NumberPolicy, RefundValidityRule

    return NumberPolicy.objects.create(
        code="uk-test",
        name="UK test",
        first_topup_days=180,
        grace_days=89,
        suspension_days=4,
        quarantine_days=180,
        max_validity_days=None,
        extension_rule=ExtensionRule.RESET,
        refund_validity_rule=RefundValidityRule.KEEP,
    )


@pytest.fixture
def hkd_plan(db: Any) -> Any:
    from leb.catalog.models import Plan

    return Plan.objects.create(
        code="hk-50",
        name_en="HK$50 / 180 days",
        name_zh_hans="50港元 / 180天",
        name_zh_hant="50港元 / 180日",
        currency="HKD",
        price=5000,
        credit=5000,
        validity_days=180,
    )


@pytest.fixture
def gbp_plan(db: Any) -> Any:
    from leb.catalog.models import Plan

    return Plan.objects.create(
        code="uk-10",
        name_en="£10 / 180 days",
        name_zh_hans="10英镑 / 180天",
        name_zh_hant="10英鎊 / 180日",
        currency="GBP",
        price=1000,
        credit=1000,
        validity_days=180,
    )


@pytest.fixture
def make_line(db: Any, hk_policy: Any, now: datetime) -> Callable[..., Any]:
    from leb.lines.actions import do_activate_line, do_create_line

    def factory(
        *,
        policy: Any = None,
        currency: str = "HKD",
        activate: bool = True,
        at: datetime | None = None,
        owner: Any = None,
    ) -> Any:
        n = next_serial()
        line = do_create_line(
            iccid=make_iccid(n),
            policy=policy or hk_policy,
            currency=currency,
            activation_code=f"1$smdp.example.com$MATCH-{n}",
            msisdn=make_hk_msisdn(n),
            now=at or now,
        )
        if owner is not None:
            line.owner = owner
            line.save(update_fields=["owner"])
        if activate:
            line = do_activate_line(line, now=at or now)
        return line

    return factory


@pytest.fixture(scope="class")
def demo(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedDemo]:
    """`leb demo`'s data, loaded once for the tests of one class (it takes
    seconds). Each test still runs in its own savepoint inside the transaction
    that holds the demo, as under Django's setUpTestData: what one test
    changes is rolled back before the next starts. The class's tests need the
    database (django_db), and none of them may be transactional."""
    from contextlib import ExitStack

    from django.test import override_settings

    from leb.common import clock
    from leb.ops.demo import load_demo
    from leb.testing import rolled_back

    held = ExitStack()
    with django_db_blocker.unblock():
        held.enter_context(rolled_back())
        try:
            when = clock.now()
            with override_settings(VAR_DIR=tmp_path_factory.mktemp("demo") / "var"):
                summary = load_demo(now=when)
        except BaseException:
            held.close()
            raise
    try:
        yield LoadedDemo(summary, when)
    finally:
        with django_db_blocker.unblock():
            held.close()


@pytest.fixture
def ledger_ok() -> Callable[[], None]:
    """Call after moving money: every ledger invariant must hold."""
    from leb.ledger.queries import verify_ledger

    def check() -> None:
        report = verify_ledger()
        assert report.ok, report.problems

    return check


PERSONA_PASSWORD = "correct horse battery 42"


def _signed_in(user: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    return client


@pytest.fixture
def owner(db: Any) -> Any:
    """The persona who owns the lines, orders and tickets under test."""
    from leb.accounts.actions import do_register_user

    return do_register_user(
        email="owner@example.com",
        phone="",
        password=PERSONA_PASSWORD,
        language="en",
        verified=True,
    )


@pytest.fixture
def outsider(db: Any) -> Any:
    """Another subscriber: must never see the owner's things."""
    from leb.accounts.actions import do_register_user

    return do_register_user(
        email="outsider@example.com",
        phone="",
        password=PERSONA_PASSWORD,
        language="en",
        verified=True,
    )


@pytest.fixture
def owner_client(owner: Any) -> Any:
    return _signed_in(owner)


@pytest.fixture
def outsider_client(outsider: Any) -> Any:
    return _signed_in(outsider)


@pytest.fixture
def anonymous() -> Any:
    """A visitor who is not signed in."""
    from django.test import Client

    return Client()


@pytest.fixture
def frozen_now(now: datetime) -> Iterator[None]:
    """The clock stands still at `now` (a folder's conftest turns it on)."""
    from leb.common import clock

    with clock.frozen(now):
        yield


@pytest.fixture
def owner_token(owner: Any) -> str:
    """A personal API token of the owner, in clear."""
    from leb.api.actions import do_create_personal_token

    _token, clear = do_create_personal_token(owner, "laptop")
    return clear


@pytest.fixture
def hook_server(settings: Any) -> Iterator[HookServer]:
    """A real HTTP server on 127.0.0.1 recording each POST; answers with the
    next status in `status` (200 when empty)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[HookRequest] = []
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            received.append(
                HookRequest(self.path, dict(self.headers.items()), self.rfile.read(length))
            )
            self.send_response(statuses.pop(0) if statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.NOTIFICATIONS_WEBHOOK_ALLOW_PRIVATE = True
    try:
        yield HookServer(f"http://127.0.0.1:{server.server_address[1]}/hook", received, statuses)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A local HTTP server that answers as told: slowly, 503, garbage, or not
    at all (leb.testing.FaultServer)."""
    server = FaultServer()
    try:
        yield server
    finally:
        server.close()
