"""Signed, time-stamped values that age by leb's clock, so the expiry of a
link follows the same "now" as the prices and lifecycles it guards (and
tests move time instead of waiting)."""

from __future__ import annotations

from typing import Any

from django.core import signing

from . import clock


class ClockSigner(signing.TimestampSigner):
    def timestamp(self) -> str:
        return signing.b62_encode(int(clock.now().timestamp()))

    def unsign(self, value: str, max_age: Any = None) -> str:
        result = signing.Signer.unsign(self, value)
        value, stamp = result.rsplit(self.sep, 1)
        issued = signing.b62_decode(stamp)
        if max_age is not None and clock.now().timestamp() - issued > float(max_age):
            raise signing.SignatureExpired("Signature age exceeds max_age")
        return value
