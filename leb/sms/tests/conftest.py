from collections.abc import Iterator

import pytest

import leb.sms


@pytest.fixture(autouse=True)
def _empty_sms_outbox() -> Iterator[None]:
    leb.sms.outbox.clear()
    yield
    leb.sms.outbox.clear()
