#!/usr/bin/env python3
"""Known vulnerabilities in the locked dependencies, with pip-audit.

    .venv/bin/python scripts/audit_deps.py                # both locks
    .venv/bin/python scripts/audit_deps.py requirements/base.lock

Each lock is audited exactly as pinned (`--require-hashes --disable-pip`:
nothing is installed or resolved), first against PyPI's vulnerability feed
and, when PyPI could not answer, against OSV. Exit status:

- 1: a known vulnerability in a pinned version (never hidden);
- 0: no known vulnerability, or the databases could not be reached (or
  answered for none of the packages): then it says loudly, on the last line,
  that it could NOT check, so an offline CI run passes without pretending;
- 2: pip-audit itself failed for another reason (a broken lock, a bad
  option): a real error, not a network one.

A package a database could not answer for while others were answered (e.g. a
package not on PyPI) is listed as not checked.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = [ROOT / "requirements" / "base.lock", ROOT / "requirements" / "dev.lock"]
SERVICES = ["pypi", "osv"]

# What pip-audit prints when the service, not the lock, is the problem.
UNREACHABLE = re.compile(
    r"ConnectionError|Could not connect to|NameResolutionError|Failed to resolve|"
    r"Max retries exceeded|ConnectTimeout|ReadTimeout|ServiceError|"
    r"SSLError|ProxyError|Network is unreachable|Connection refused|"
    r"Temporary failure in name resolution|HTTPError",
)


@dataclass
class Outcome:
    """One audit of one lock against one service."""

    service: str
    lock: str
    # "vulnerable", "clean", "unchecked" (nothing could be checked) or "error"
    verdict: str
    findings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    checked: int = 0
    detail: str = ""


def classify(service: str, lock: str, returncode: int, report: str, stderr: str) -> Outcome:
    """Turn one pip-audit run (its exit status, its JSON report if it wrote
    one, its stderr) into an Outcome. A vulnerability always wins."""
    if report.strip():
        try:
            dependencies = json.loads(report)["dependencies"]
        except (ValueError, KeyError, TypeError):
            return Outcome(service, lock, "error", detail="unreadable pip-audit report")
        findings = [
            f"{dep['name']} {dep.get('version', '?')}: "
            + " / ".join([vuln["id"], *vuln.get("aliases", [])])
            + (f" (fixed in {', '.join(vuln['fix_versions'])})" if vuln.get("fix_versions") else "")
            for dep in dependencies
            for vuln in dep.get("vulns", [])
        ]
        skipped = [
            f"{dep['name']}: {dep['skip_reason']}" for dep in dependencies if "skip_reason" in dep
        ]
        checked = len(dependencies) - len(skipped)
        if findings:
            return Outcome(service, lock, "vulnerable", findings, skipped, checked)
        if returncode != 0:
            return Outcome(service, lock, "error", skipped=skipped, detail=_last_line(stderr))
        if dependencies and checked == 0:
            # e.g. every version answered 404: nothing was looked up at all.
            return Outcome(
                service, lock, "unchecked", skipped=skipped, detail="no package could be looked up"
            )
        return Outcome(service, lock, "clean", skipped=skipped, checked=checked)
    if returncode != 0 and UNREACHABLE.search(stderr):
        return Outcome(service, lock, "unchecked", detail=_last_line(stderr))
    if returncode == 0:
        return Outcome(service, lock, "error", detail="pip-audit wrote no report")
    return Outcome(service, lock, "error", detail=_last_line(stderr))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def pip_audit_command() -> list[str]:
    configured = os.environ.get("LEB_PIP_AUDIT")
    if configured:
        return configured.split()
    beside = Path(sys.executable).with_name("pip-audit")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "pip_audit"]


def audit(lock: Path, service: str, timeout: int, osv_url: str | None) -> Outcome:
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "report.json"
        command = [
            *pip_audit_command(),
            "--require-hashes",
            "--disable-pip",
            "--progress-spinner=off",
            f"--vulnerability-service={service}",
            f"--timeout={timeout}",
            "--format=json",
            f"--output={output}",
            "-r",
            str(lock),
        ]
        if osv_url and service == "osv":
            command.append(f"--osv-url={osv_url}")
        try:
            result = subprocess.run(  # noqa: S603
                command, capture_output=True, text=True, check=False, timeout=timeout * 40 + 60
            )
        except subprocess.TimeoutExpired:
            return Outcome(service, str(lock), "unchecked", detail="pip-audit timed out")
        except OSError as exc:
            return Outcome(service, str(lock), "error", detail=f"cannot run pip-audit: {exc}")
        report = output.read_text() if output.exists() else ""
        return classify(service, str(lock), result.returncode, report, result.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("locks", nargs="*", type=Path, default=LOCKS)
    parser.add_argument(
        "--service", action="append", choices=SERVICES, help="default: pypi, then osv"
    )
    parser.add_argument("--osv-url", help="another OSV API (a mirror)")
    parser.add_argument("--timeout", type=int, default=10, help="seconds per request")
    args = parser.parse_args(argv)
    services = args.service or SERVICES

    vulnerable, errors, unchecked = False, False, []
    for lock in args.locks:
        name = str(lock.relative_to(ROOT) if lock.is_relative_to(ROOT) else lock)
        outcome = None
        for service in services:
            outcome = audit(lock, service, args.timeout, args.osv_url)
            if outcome.verdict in ("vulnerable", "clean", "error"):
                break
            print(f"audit-deps: {name}: {service} could not be used: {outcome.detail}")
        assert outcome is not None
        if outcome.verdict == "vulnerable":
            vulnerable = True
            print(f"audit-deps: {name}: KNOWN VULNERABILITIES ({outcome.service}):")
            for finding in outcome.findings:
                print(f"  {finding}")
        elif outcome.verdict == "clean":
            print(
                f"audit-deps: {name}: no known vulnerabilities in {outcome.checked} "
                f"packages ({outcome.service})"
            )
        elif outcome.verdict == "error":
            errors = True
            print(f"audit-deps: {name}: pip-audit failed: {outcome.detail}", file=sys.stderr)
        else:
            unchecked.append(name)
        for skipped in outcome.skipped if outcome.verdict != "unchecked" else []:
            print(f"audit-deps: {name}: not checked: {skipped}")
    if vulnerable:
        return 1
    if errors:
        return 2
    if unchecked:
        print(
            "audit-deps: COULD NOT CHECK for known vulnerabilities (no vulnerability "
            f"database reachable): {', '.join(unchecked)}. Run it again with network access."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
