"""The floor under the ORM: one order's SQL, captured from the real actions,
replayed through the bare driver (stdlib sqlite3, or psycopg with the same
client-side binding Django uses) in the same transactions, savepoints
included. What remains between the two rates is the ORM's own work.

Two orders on two lines are captured. A parameter equal in both is a
constant; one that differs is traced back to what varies per order (the
line, its wallet, the order id, the public id, the ledger groups, the receipt
number) so the replay writes real, distinct, consistent rows: the ledger it
leaves behind still verifies. The caller spaces the two captures (another
order in between) so ids that grow in step elsewhere differ here; a value
that still matches two ids is an error, never a guess.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.utils.dateparse import parse_datetime

_QMARK = re.compile(r"(?<!%)%s")
_SAVEPOINT = re.compile(r'"s\d+_x\d+"')
_UUID_HEX = re.compile(r"^[0-9a-f]{32}$")
_BOUNDARY = "(?<![0-9A-Za-z]){}(?![0-9A-Za-z])"
TRANSACTION = "-- transaction"


class Ambiguous(ValueError):
    """A varying value matched two ids in both captures."""


@dataclass
class Captured:
    sql: str
    params: list[Any]
    in_atomic: bool


def _plain(value: Any) -> Any:
    # Choices enums are str subclasses: plain str pickles without Django set up.
    return str(value) if isinstance(value, str) and type(value) is not str else value


@contextmanager
def recording() -> Iterator[list[Captured]]:
    """Every statement the default connection runs inside the block; call
    mark(log) before each action to start a transaction in the capture."""
    log: list[Captured] = []

    def wrapper(
        execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if many:
            raise ValueError("executemany is not replayed")
        log.append(Captured(sql, [_plain(p) for p in params or ()], connection.in_atomic_block))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield log


def mark(log: list[Captured]) -> None:
    log.append(Captured(TRANSACTION, [], True))


# A parameter of the replay: ("const", value), ("id", name), ("template", parts),
# ("json", parameter of its text), ("list", parameters), ("uuid_hex",) or
# ("uuid",) for a fresh uuid, ("unique", value) for value made unique per order.
Param = tuple[Any, ...]


@dataclass
class Statement:
    sql: str
    params: list[Param]
    returns: str | None
    fetch: bool


@dataclass
class Transaction:
    explicit: bool
    statements: list[Statement] = field(default_factory=list)


@dataclass
class Template:
    vendor: str
    transactions: list[Transaction]
    receipt_year: int
    statements: int
    # Parameters that varied between the two captures but could not be traced:
    # replayed as in the first capture (timestamps from timezone.now()).
    untraced: int


def _returns(sql: str, params: list[Any]) -> str | None:
    if " RETURNING " not in sql:
        return None
    if sql.startswith('INSERT INTO "topups_topuporder"'):
        return "order"
    if sql.startswith('INSERT INTO "ledger_transfergroup"'):
        return "group_payment" if str(params[0]).endswith(":payment") else "group_fulfil"
    if sql.startswith('INSERT INTO "topups_receiptcounter"'):
        return "receipt_last"
    return ""


def _align(a: str, b: str, ids_a: dict[str, Any], ids_b: dict[str, Any]) -> list[Any] | None:
    """`a` as literal text and identity names such that it renders `b` from ids_b."""
    by_text: dict[str, list[str]] = {}
    for name, value in ids_a.items():
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value):
            by_text.setdefault(str(value), []).append(name)
    if not by_text:
        return None
    alternatives = sorted(by_text, key=len, reverse=True)
    pattern = re.compile("|".join(_BOUNDARY.format(re.escape(text)) for text in alternatives))
    parts: list[Any] = []
    pos_a = pos_b = 0
    for match in pattern.finditer(a):
        literal = a[pos_a : match.start()]
        if not b.startswith(literal, pos_b):
            return None
        parts.append(literal)
        pos_b += len(literal)
        names = [name for name in by_text[match.group(0)] if b.startswith(str(ids_b[name]), pos_b)]
        if len(names) > 1:
            raise Ambiguous(f"captures cannot tell {names} apart in {a[:80]!r}")
        if names:
            parts.append(("id", names[0]))
            pos_b += len(str(ids_b[names[0]]))
        else:
            if not b.startswith(match.group(0), pos_b):
                return None
            parts.append(match.group(0))
            pos_b += len(match.group(0))
        pos_a = match.end()
    if a[pos_a:] != b[pos_b:]:
        return None
    parts.append(a[pos_a:])
    return parts if any(isinstance(part, tuple) for part in parts) else None


def _is_json(value: str) -> bool:
    if not value.startswith(("{", "[")):
        return False
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _is_datetime(value: str) -> bool:
    try:
        return parse_datetime(value) is not None
    except ValueError:
        return False


def _json_wrapped(value: Any) -> bool:
    # psycopg's Json/Jsonb: how Django passes a JSONField value to PostgreSQL.
    return type(value).__name__ in ("Json", "Jsonb") and hasattr(value, "obj")


def _param(a: Any, b: Any, ids_a: dict[str, Any], ids_b: dict[str, Any]) -> tuple[Param, bool]:
    """(parameter, traced)."""
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        # PostgreSQL's bulk insert passes one array per column (UNNEST).
        items = [_param(x, y, ids_a, ids_b) for x, y in zip(a, b, strict=True)]
        return ("list", [item for item, _traced in items]), all(t for _i, t in items)
    if _json_wrapped(a) and _json_wrapped(b):
        inner, traced = _param(json.dumps(a.obj), json.dumps(b.obj), ids_a, ids_b)
        return ("json", inner), traced
    if a == b and type(a) is type(b):
        return ("const", a), True
    names = [name for name, value in ids_a.items() if value == a and ids_b.get(name) == b]
    if len(names) > 1:
        raise Ambiguous(f"captures cannot tell {names} apart")
    if names:
        return ("id", names[0]), True
    if isinstance(a, uuid.UUID):
        return ("uuid",), True
    if isinstance(a, str) and isinstance(b, str):
        parts = _align(a, b, ids_a, ids_b)
        if parts is not None:
            return ("template", parts), True
        if _UUID_HEX.match(a):
            return ("uuid_hex",), True
        if _is_json(a) or _is_datetime(a):
            # Keep it valid: the column checks JSON, or Django reads it back as a date.
            return ("const", a), False
        return ("unique", a), True
    return ("const", a), False


def build(
    capture_a: list[Captured],
    ids_a: dict[str, Any],
    capture_b: list[Captured],
    ids_b: dict[str, Any],
) -> Template:
    """The replayable form of one order, from two captured orders."""
    capture_a = [c for c in capture_a if not c.sql.startswith("BEGIN")]
    capture_b = [c for c in capture_b if not c.sql.startswith("BEGIN")]
    if len(capture_a) != len(capture_b):
        raise ValueError(
            f"the two captures differ: {len(capture_a)} vs {len(capture_b)} statements"
        )
    transactions: list[Transaction] = []
    untraced = 0
    count = 0
    for one, two in zip(capture_a, capture_b, strict=True):
        if _SAVEPOINT.sub("sp", one.sql) != _SAVEPOINT.sub("sp", two.sql) or len(one.params) != len(
            two.params
        ):
            raise ValueError(f"the two captures differ at: {one.sql[:120]}")
        if one.sql == TRANSACTION:
            transactions.append(Transaction(explicit=True))
            continue
        if not one.in_atomic or not transactions or not transactions[-1].explicit:
            transactions.append(Transaction(explicit=False))
        params = []
        for a, b in zip(one.params, two.params, strict=True):
            param, traced = _param(a, b, ids_a, ids_b)
            untraced += not traced
            params.append(param)
        sql = one.sql
        if connection.vendor == "sqlite":
            sql = _QMARK.sub("?", sql).replace("%%", "%")
        transactions[-1].statements.append(
            Statement(
                sql,
                params,
                _returns(one.sql, one.params),
                sql.lstrip().upper().startswith("SELECT"),
            )
        )
        count += 1
        if not one.in_atomic:
            transactions.append(Transaction(explicit=False))
    receipt_year = int(str(ids_a["receipt"]).split("-")[0])
    return Template(
        connection.vendor, [t for t in transactions if t.statements], receipt_year, count, untraced
    )


def _value(param: Param, ids: dict[str, Any], serial: str) -> Any:
    kind = param[0]
    if kind == "const":
        return param[1]
    if kind == "id":
        return ids[param[1]]
    if kind == "template":
        return "".join(part if isinstance(part, str) else str(ids[part[1]]) for part in param[1])
    if kind == "list":
        return [_value(item, ids, serial) for item in param[1]]
    if kind == "json":
        from psycopg.types.json import Jsonb

        return Jsonb(json.loads(_value(param[1], ids, serial)))
    if kind == "uuid_hex":
        return uuid.uuid4().hex
    if kind == "uuid":
        return uuid.uuid4()
    # Same length as the captured value (columns have a maximum), unique per order.
    value = str(param[1])
    token = hashlib.sha256(serial.encode()).hexdigest()[:16]
    return value[: -len(token)] + token if len(value) > len(token) else f"{value}~{token}"


def raw_connection() -> Any:
    """A bare driver connection to Django's database, set up the same way."""
    settings = connection.settings_dict
    options = settings.get("OPTIONS", {})
    if connection.vendor == "sqlite":
        name = str(settings["NAME"])
        raw = sqlite3.connect(
            name,
            uri=name.startswith("file:"),
            isolation_level=None,
            timeout=float(options.get("timeout", 20)),
            check_same_thread=False,
        )
        if options.get("init_command"):
            raw.executescript(options["init_command"])
        return raw
    import psycopg

    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings.get("USER") or None,
        password=settings.get("PASSWORD") or None,
        host=settings.get("HOST") or None,
        port=settings.get("PORT") or None,
        autocommit=True,
        # Client-side binding, as Django's PostgreSQL backend uses by default.
        cursor_factory=psycopg.ClientCursor,
    )


def replay(
    template: Template,
    targets: list[dict[str, Any]],
    serial: str,
    start: Callable[[], None] | None = None,
) -> float:
    """Run the template once per target (line, wallet); return the seconds
    from `start()` on. Each order gets fresh ids from its own inserts."""
    raw = raw_connection()
    try:
        return _replay(raw, template, targets, serial, start)
    finally:
        raw.close()


def _replay(
    raw: Any,
    template: Template,
    targets: list[dict[str, Any]],
    serial: str,
    start: Callable[[], None] | None,
) -> float:
    cursor = raw.cursor()
    begin = "BEGIN IMMEDIATE" if template.vendor == "sqlite" else "BEGIN"
    if start is not None:
        start()
    started = time.monotonic()
    for index, target in enumerate(targets):
        public = uuid.uuid4()
        ids = {
            **target,
            "public_uuid": public,
            "public_hex": public.hex,
            "public_str": str(public),
        }
        tag = f"{serial}{index}"
        for txn in template.transactions:
            if txn.explicit:
                cursor.execute(begin)
            for statement in txn.statements:
                cursor.execute(statement.sql, [_value(p, ids, tag) for p in statement.params])
                if statement.returns is not None:
                    row = cursor.fetchone()
                    cursor.fetchall()
                    if statement.returns:
                        ids[statement.returns] = row[0]
                        if statement.returns == "receipt_last":
                            ids["receipt"] = f"{template.receipt_year}-{row[0]:07d}"
                elif statement.fetch:
                    cursor.fetchall()
            if txn.explicit:
                cursor.execute("COMMIT")
    return time.monotonic() - started
