from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from leb.accounts.actions import do_register_user, do_save_preferences

_serial = itertools.count(1)


def make_user(
    *,
    email: str | None = None,
    phone: str = "",
    language: str = "en",
    time_zone: str = "Asia/Hong_Kong",
) -> Any:
    n = next(_serial)
    user = do_register_user(
        email=f"subscriber{n}@example.com" if email is None else email,
        phone=phone,
        password="correct horse battery 42",
        language=language,
        verified=True,
    )
    do_save_preferences(user, language=language, time_zone=time_zone)
    user.refresh_from_db()
    return user


def receipt_context(valid_until: datetime, *, amount: int = 5000) -> dict[str, Any]:
    return {
        "receipt_number": "2026-0000042",
        "receipt_url": "http://127.0.0.1:8000/receipts/2026-0000042/",
        "valid_until": valid_until.isoformat(),
        "paid_amount": amount,
        "paid_currency": "HKD",
        "channel": "web",
    }
