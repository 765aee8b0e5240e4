from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from leb.ops.management.commands.serve import site_url


@pytest.mark.parametrize(
    ("bind", "url"),
    [
        ("127.0.0.1:8000", "http://127.0.0.1:8000/"),
        ("0.0.0.0:8080", "http://127.0.0.1:8080/"),
        ("[::1]:8000", "http://[::1]:8000/"),
        ("unix:/run/leb.sock", "unix:/run/leb.sock"),
    ],
)
def test_site_url_is_the_address_a_browser_can_open(bind: str, url: str) -> None:
    # given / when
    shown = site_url(bind)

    # then
    assert shown == url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
        status: int = response.status
        return status


def wait_until_served(url: str, process: subprocess.Popen[bytes], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return get(url) == 200
        except OSError:
            time.sleep(0.2)
    return False


@pytest.mark.own_database
def test_serve_with_worker_serves_and_stops_both_on_sigint(tmp_path: Path) -> None:
    # given: a throwaway SQLite database, so the child processes touch nothing shared
    env = {key: value for key, value in os.environ.items() if key != "LEB_DATABASE_URL"}
    env["LEB_VAR_DIR"] = str(tmp_path)
    leb = [sys.executable, "-m", "leb.cli"]
    subprocess.run([*leb, "migrate", "--no-input", "-v0"], env=env, check=True)  # noqa: S603
    bind = f"127.0.0.1:{free_port()}"
    serve = subprocess.Popen(  # noqa: S603
        [*leb, "serve", "--with-worker", "--bind", bind, "--workers", "1", "--threads", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    # when: it serves, and its worker's scheduler enqueues the first jobs
    lines: list[str] = []
    reader = threading.Thread(
        target=lambda: lines.extend(line.decode() for line in iter(serve.stdout.readline, b"")),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        served = wait_until_served(f"http://{bind}/healthz", serve, 30)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("Enqueued periodic job" in x for x in lines):
            time.sleep(0.2)
        serve.send_signal(signal.SIGINT)
        serve.wait(timeout=40)
        reader.join(timeout=10)
    finally:
        if serve.poll() is None:
            serve.kill()
    output = "".join(lines)

    # then
    assert served, output
    assert serve.returncode == 0, output
    assert f"http://{bind}/ops/" in output
    assert "Enqueued periodic job lines-sweep" in output
    with pytest.raises(OSError):
        get(f"http://{bind}/healthz")
