"""The transaction shape of an action, said where it is defined.

Every `do_<verb>_<noun>()` carries one of these, so a reader (and a test)
sees at a glance how it writes:

- `one_transaction`: the whole action is one atomic block; inside a caller's
  transaction it is a savepoint of it, so it commits or rolls back with it.
- `own_transactions`: the action checks its input, then writes in one or
  more atomic blocks of its own (or through other actions); it may run
  inside a caller's transaction.
- `outside_transaction`: the action talks to a provider or another service
  between its transactions, so it must never run inside one (a row lock would
  be held across the network call); it raises if it is.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.db import connection, transaction

F = TypeVar("F", bound=Callable[..., Any])

SHAPE_ATTRIBUTE = "transaction_shape"


def _shape(fn: F, shape: str) -> F:
    setattr(fn, SHAPE_ATTRIBUTE, shape)
    return fn


def one_transaction(fn: F) -> F:
    return _shape(cast(F, transaction.atomic(fn)), "one")


def own_transactions(fn: F) -> F:
    return _shape(fn, "own")


def in_transaction() -> bool:
    """True inside an atomic block the code itself opened. The blocks a test
    case wraps around each test do not count (as for `durable=True`)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def outside_transaction(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if in_transaction():
            raise RuntimeError(
                f"{fn.__qualname__} calls out to a provider: run it outside a transaction"
            )
        return fn(*args, **kwargs)

    return _shape(cast(F, wrapper), "outside")


# PostgreSQL: lock_not_available (lock_timeout) and query_canceled
# (statement_timeout). SQLite: the write lock was not free within its timeout.
BUSY_SQLSTATES = frozenset({"55P03", "57014"})


def database_busy(exc: BaseException) -> bool:
    """Whether `exc` means another transaction held what this one needed for
    longer than the database lets it wait. The failed transaction has rolled
    back whole; trying again later is the answer."""
    from django.db import OperationalError

    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    sqlstate = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if sqlstate in BUSY_SQLSTATES:
        return True
    return "database is locked" in str(exc)
