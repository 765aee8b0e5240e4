"""scripts/audit_deps.py: pip-audit over the locks, offline-tolerant. A
known vulnerability fails, an unreachable database is said out loud and
passes, a broken lock is an error. Run against a local stand-in for OSV's
API, so pip-audit really queries something."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from leb.testing import free_port

# The dependency audit touches no database.
pytestmark = pytest.mark.own_database

ROOT = Path(__file__).resolve().parents[3]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", ROOT / "scripts" / "audit_deps.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


audit_deps = _load()

LOCK = (
    "django==5.2.1 \\\n    --hash=sha256:{a}\nsqlparse==0.5.3 \\\n    --hash=sha256:{b}\n".format(
        a="a" * 64, b="b" * 64
    )
)
VULN = {
    "id": "GHSA-test-0001",
    "schema_version": "1.6.0",
    "summary": "a test vulnerability",
    "aliases": ["CVE-2099-0001"],
    "affected": [
        {
            "package": {"name": "django", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.2.2"}]}],
        }
    ],
}


class FakeOsv:
    """OSV's /v1/query: `vulnerable` names the packages that have VULN;
    `status` other than 200 answers every query with that error."""

    def __init__(self) -> None:
        self.vulnerable: set[str] = set()
        self.status = 200
        self.queries: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.queries.append(query)
                name = query["package"]["name"]
                body = json.dumps({"vulns": [VULN]} if name in fake.vulnerable else {}).encode()
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/query"


@pytest.fixture
def osv() -> Iterator[FakeOsv]:
    fake = FakeOsv()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()


@pytest.fixture
def lock(tmp_path: Path) -> Path:
    path = tmp_path / "mini.lock"
    path.write_text(LOCK)
    return path


def run(lock: Path, url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = audit_deps.main([str(lock), "--service", "osv", "--osv-url", url, "--timeout", "5"])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_a_known_vulnerability_fails(
    osv: FakeOsv, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a database that knows a vulnerability in the pinned Django
    osv.vulnerable = {"django"}
    # when
    status, output = run(lock, osv.url, capsys)
    # then
    assert status == 1, output
    assert "KNOWN VULNERABILITIES" in output
    assert "django 5.2.1: CVE-2099-0001 / GHSA-test-0001 (fixed in 5.2.2)" in output
    assert {q["package"]["name"] for q in osv.queries} == {"django", "sqlparse"}


def test_no_known_vulnerability_passes(
    osv: FakeOsv, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run(lock, osv.url, capsys)
    assert status == 0, output
    assert "no known vulnerabilities in 2 packages (osv)" in output
    assert "COULD NOT CHECK" not in output


def test_an_unreachable_database_passes_and_says_so(
    lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given nothing listening where the database should be
    status, output = run(lock, f"http://127.0.0.1:{free_port()}/v1/query", capsys)
    # then the run passes, and its last line says nothing was checked
    assert status == 0, output
    assert output.strip().splitlines()[-1].startswith("audit-deps: COULD NOT CHECK")


def test_a_failing_database_is_not_a_clean_result(
    osv: FakeOsv, lock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    osv.status = 503
    status, output = run(lock, osv.url, capsys)
    assert status == 0, output
    assert "COULD NOT CHECK" in output
    assert "no known vulnerabilities" not in output


def test_a_broken_lock_is_an_error(
    osv: FakeOsv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a lock without hashes (the audit must see exactly what is installed)
    broken = tmp_path / "broken.lock"
    broken.write_text("django==5.2.1\n")
    status, output = run(broken, osv.url, capsys)
    assert status == 2, output


def report(*dependencies: dict[str, Any]) -> str:
    return json.dumps({"dependencies": list(dependencies), "fixes": []})


def test_a_database_that_answered_for_no_package_checked_nothing() -> None:
    # what pip-audit reports (exit 0, "No known vulnerabilities found") when
    # PyPI's per-version pages are all missing, as on a partial mirror
    skipped = report(
        {"name": "django", "skip_reason": "Dependency not found on PyPI and could not be audited"},
        {
            "name": "sqlparse",
            "skip_reason": "Dependency not found on PyPI and could not be audited",
        },
    )
    outcome = audit_deps.classify("pypi", "base.lock", 0, skipped, "")
    assert outcome.verdict == "unchecked"


def test_a_finding_wins_over_skipped_packages() -> None:
    mixed = report(
        {"name": "django", "version": "5.2.1", "vulns": [{"id": "PYSEC-1", "fix_versions": []}]},
        {"name": "private-pkg", "skip_reason": "Dependency not found on PyPI"},
    )
    outcome = audit_deps.classify("pypi", "base.lock", 1, mixed, "")
    assert (outcome.verdict, outcome.findings) == ("vulnerable", ["django 5.2.1: PYSEC-1"])
    assert outcome.skipped == ["private-pkg: Dependency not found on PyPI"]


@pytest.mark.parametrize(
    ("stderr", "verdict"),
    [
        ("requests.exceptions.ConnectionError: ... NameResolutionError(...)", "unchecked"),
        ("pip_audit._service.interface.ConnectionError: Could not connect to PyPI", "unchecked"),
        ("ERROR:pip_audit._cli:requirement django is not pinned", "error"),
        ("", "error"),
    ],
)
def test_pip_audits_own_errors_are_told_apart(stderr: str, verdict: str) -> None:
    assert audit_deps.classify("osv", "base.lock", 1, "", stderr).verdict == verdict
