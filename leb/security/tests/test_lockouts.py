from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from leb.security.lockouts import locked_for, register_failure, register_success
from leb.security.models import Lockout

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def fail(n: int, keys: list[str], at: datetime = T0) -> timedelta | None:
    result = None
    for _ in range(n):
        result = register_failure("pin", keys, at)
    return result


def test_locks_escalate_5_10_15_20() -> None:
    # given / when / then
    assert fail(4, ["acct:1"]) is None
    assert locked_for("pin", ["acct:1"], T0) is None
    assert fail(1, ["acct:1"]) == timedelta(minutes=15)
    assert fail(5, ["acct:1"]) == timedelta(minutes=30)
    assert fail(5, ["acct:1"]) == timedelta(hours=1)
    assert fail(5, ["acct:1"]) == timedelta(hours=24)
    assert fail(1, ["acct:1"]) == timedelta(hours=24)
    remaining = locked_for("pin", ["acct:1"], T0 + timedelta(hours=1))
    assert remaining == timedelta(hours=23)


def test_lock_expires_and_any_key_locks() -> None:
    fail(5, ["acct:1", "ip:10.0.0.1"])
    # a different account from the same address is locked too
    assert locked_for("pin", ["acct:2", "ip:10.0.0.1"], T0) == timedelta(minutes=15)
    assert locked_for("pin", ["acct:2", "ip:10.0.0.2"], T0) is None
    assert locked_for("pin", ["acct:1"], T0 + timedelta(minutes=16)) is None


def test_success_clears_only_the_given_keys() -> None:
    fail(4, ["acct:1", "ip:1"])
    register_success("pin", ["acct:1"])
    assert fail(1, ["acct:1"]) is None
    assert fail(1, ["ip:1"]) == timedelta(minutes=15)


def test_a_quiet_day_forgets_the_count() -> None:
    fail(4, ["acct:1"])
    assert fail(1, ["acct:1"], T0 + timedelta(hours=25)) is None


def test_keys_are_not_stored_in_clear() -> None:
    fail(1, ["+85294000001"])
    assert not Lockout.objects.filter(key_hash__contains="85294000001").exists()


def test_scopes_are_independent() -> None:
    fail(5, ["acct:1"])
    assert locked_for("login", ["acct:1"], T0) is None


def test_spike_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    for i in range(50):
        register_failure("pin", [f"ip:{i}"], T0)
    assert any("security alert" in r.message for r in caplog.records)
