from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from leb.lines.actions import sweep_lines
from leb.lines.queries import public_line_status

pytestmark = pytest.mark.django_db


def test_quick_check_gives_dates_without_private_facts(make_line: Any, now: datetime) -> None:
    line = make_line()
    result = public_line_status(line.msisdn.replace("+852", ""), now + timedelta(days=10, hours=1))
    assert result is not None
    assert result.status == "active" and result.days_left == 20
    assert result.number_lost_on == line.valid_until + timedelta(days=90)
    assert not hasattr(result, "balance") and not hasattr(result, "owner")


def test_quick_check_unknown_terminated_and_bad_input(make_line: Any, now: datetime) -> None:
    assert public_line_status("+85294999999", now) is None
    line = make_line()
    sweep_lines(now + timedelta(days=200))
    assert public_line_status(line.msisdn, now + timedelta(days=200)) is None
    with pytest.raises(ValidationError):
        public_line_status("12ab", now)
