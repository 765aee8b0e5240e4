"""What each provider's books say for a day, for the daily settlement: the
sandbox from its own records, Stripe from balance transactions and PayPal from
Transaction Search, both against fake HTTP layers that answer like the real
APIs (never the network)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe

from leb.common import clock
from leb.payments.models import PaymentAttempt
from leb.payments.providers import paypal
from leb.payments.providers import stripe as stripe_provider
from leb.payments.providers.base import (
    CAPTURE,
    REFUND,
    PaymentProvider,
    PaymentProviderError,
    get_provider,
)
from leb.payments.providers.sandbox import SandboxProvider

pytestmark = pytest.mark.django_db
DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)  # 1 March 00:00 in Hong Kong
DAY_END = DAY_START + timedelta(days=1)
PAYPAL_BASE = "https://api-m.sandbox.paypal.com"


def test_a_provider_without_settlement_says_so() -> None:
    # given a provider that does not implement listing
    class Bare(SandboxProvider):
        list_transactions = PaymentProvider.list_transactions

    # when its transactions are asked for, then a clear error says it cannot
    with pytest.raises(PaymentProviderError) as raised:
        Bare().list_transactions(DAY_START, DAY_END)
    assert raised.value.code == "not_supported"
    assert "cannot list its transactions" in str(raised.value)


def _sandbox_attempt(make_order: Any, state: dict[str, Any]) -> PaymentAttempt:
    order = make_order()
    attempt = PaymentAttempt.objects.create(
        order=order,
        provider="sandbox",
        amount=order.price,
        currency=order.currency,
        status="succeeded",
        created_at=DAY_START,
        updated_at=DAY_START,
    )
    attempt.provider_reference = f"sbx_{attempt.public_id.hex}"
    attempt.provider_data = {"gateway": state}
    attempt.save()
    return attempt


def test_sandbox_lists_its_captures_and_refunds_of_the_day(make_order: Any) -> None:
    # given a capture inside the day, one the day before, and a refund inside
    # the day of a payment captured the day before
    inside = _sandbox_attempt(
        make_order, {"state": "succeeded", "at": int((DAY_START + timedelta(hours=2)).timestamp())}
    )
    _sandbox_attempt(
        make_order, {"state": "succeeded", "at": int((DAY_START - timedelta(hours=1)).timestamp())}
    )
    refunded = _sandbox_attempt(
        make_order, {"state": "succeeded", "at": int((DAY_START - timedelta(days=3)).timestamp())}
    )
    with clock.frozen(DAY_START + timedelta(hours=5)):
        get_provider("sandbox").refund(
            refunded, 2000, idempotency_key="refund:first", refund_id="first"
        )
    # when the sandbox lists the day
    records = get_provider("sandbox").list_transactions(DAY_START, DAY_END)
    # then it shows the capture and the refund, with their references
    assert [(r.kind, r.amount, r.reference) for r in records] == [
        (CAPTURE, inside.amount, inside.provider_reference),
        (REFUND, 2000, refunded.provider_reference),
    ]
    assert records[0].attempt_id == str(inside.public_id)
    assert records[0].currency == "HKD"


def test_sandbox_refunds_once_per_key_and_lists_each_refund(make_order: Any) -> None:
    # given a captured sandbox payment refunded in part twice, the first
    # refund asked for again under its key
    attempt = _sandbox_attempt(make_order, {"state": "succeeded", "at": 1})
    sandbox = get_provider("sandbox")
    with clock.frozen(DAY_START + timedelta(hours=1)):
        first = sandbox.refund(attempt, 1000, idempotency_key="refund:a", refund_id="a")
        again = sandbox.refund(attempt, 1000, idempotency_key="refund:a", refund_id="a")
        other = sandbox.refund(attempt, 500, idempotency_key="refund:b", refund_id="b")

    # then the gateway booked two refunds, the repeat returning the first
    attempt.refresh_from_db()
    assert first == again and first.reference != other.reference
    assert sorted(r["amount"] for r in attempt.provider_data["gateway_refunds"].values()) == [
        500,
        1000,
    ]
    # and the day's listing has each refund once
    records = sandbox.list_transactions(DAY_START, DAY_END)
    assert sorted((r.kind, r.amount, r.transaction_id) for r in records) == sorted(
        [(REFUND, 1000, first.reference), (REFUND, 500, other.reference)]
    )


# --- Stripe -----------------------------------------------------------------------


def _bt(bt_id: str, kind: str, amount: int, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": bt_id,
        "object": "balance_transaction",
        "type": kind,
        "amount": amount,
        "fee": extra.pop("fee", 0),
        "currency": "hkd",
        "status": extra.pop("status", "available"),
        "created": int((DAY_START + timedelta(hours=1)).timestamp()),
        "source": source,
        **extra,
    }


class FakeStripeBalance(stripe.HTTPClient):
    """Answers balance transaction and payout lists like Stripe, two per page."""

    name = "fake"
    page_size = 2

    def __init__(self, transactions: list[dict[str, Any]], payouts: dict[str, list[str]]) -> None:
        super().__init__()
        self.transactions = transactions
        self.payouts = payouts
        self.requests: list[dict[str, Any]] = []
        self.fail = False

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, **kwargs: Any
    ) -> tuple[str, int, dict[str, str]]:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.requests.append({"method": method, "path": parts.path, "query": query})
        if self.fail:
            error = {"error": {"message": "Stripe is down", "type": "api_error"}}
            return json.dumps(error), 500, {}
        if parts.path == "/v1/balance_transactions":
            if "payout" in query:
                wanted = set(self.payouts.get(query["payout"][0], []))
                rows = [{"id": bt_id, "object": "balance_transaction"} for bt_id in sorted(wanted)]
            else:
                rows = self.transactions
            return self._page(rows, query, parts.path)
        if parts.path == "/v1/payouts":
            rows = [{"id": payout, "object": "payout"} for payout in self.payouts]
            return self._page(rows, query, parts.path)
        return json.dumps({"error": {"message": "not found"}}), 404, {}

    def _page(
        self, rows: list[dict[str, Any]], query: dict[str, list[str]], path: str
    ) -> tuple[str, int, dict[str, str]]:
        start = 0
        if "starting_after" in query:
            ids = [row["id"] for row in rows]
            start = ids.index(query["starting_after"][0]) + 1
        page = rows[start : start + self.page_size]
        body = {
            "object": "list",
            "url": path,
            "has_more": start + self.page_size < len(rows),
            "data": page,
        }
        return json.dumps(body), 200, {}

    def close(self) -> None:
        pass


@pytest.fixture
def stripe_books(settings: Any) -> Iterator[FakeStripeBalance]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "stripe"]
    settings.STRIPE_SECRET_KEY = "sk_test_fake"
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 5000,
        "currency": "hkd",
        "payment_intent": "pi_1",
        "metadata": {"attempt": "6f1c3d0e-0000-4000-8000-000000000001"},
    }
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 2000,
        "currency": "hkd",
        "payment_intent": "pi_0",
        "charge": "ch_0",
        "metadata": {},
    }
    fake = FakeStripeBalance(
        [
            _bt("txn_1", "charge", 5000, charge, fee=180, status="pending"),
            _bt("txn_2", "refund", -2000, refund),
            _bt("txn_3", "payout", -9000, {"id": "po_0", "object": "payout"}),
            _bt(
                "txn_4",
                "payment",
                3000,
                {**charge, "id": "py_2", "amount": 3000, "payment_intent": "pi_2", "metadata": {}},
            ),
        ],
        {"po_1": ["txn_2"]},
    )
    previous, stripe_provider.http_client = stripe_provider.http_client, fake
    try:
        yield fake
    finally:
        stripe_provider.http_client = previous


def test_stripe_lists_the_days_charges_and_refunds_by_payout(
    stripe_books: FakeStripeBalance,
) -> None:
    # when Stripe's books are listed for the day
    records = get_provider("stripe").list_transactions(DAY_START, DAY_END)
    # then charges and refunds come back with their payment, fee and payout;
    # the payout's own balance transaction is not a payment
    assert [
        (r.transaction_id, r.kind, r.amount, r.reference, r.fee, r.payout_id) for r in records
    ] == [
        ("txn_1", CAPTURE, 5000, "pi_1", 180, ""),
        ("txn_2", REFUND, 2000, "pi_0", 0, "po_1"),
        ("txn_4", CAPTURE, 3000, "pi_2", 0, ""),
    ]
    assert records[0].pending and not records[1].pending
    assert records[0].attempt_id == "6f1c3d0e-0000-4000-8000-000000000001"
    assert records[0].currency == "HKD"
    # and the list was asked for the day, with the sources expanded, page by page
    listing = [
        r
        for r in stripe_books.requests
        if r["path"] == "/v1/balance_transactions" and "payout" not in r["query"]
    ]
    assert len(listing) == 2
    first = listing[0]["query"]
    assert first["created[gte]"] == [str(int(DAY_START.timestamp()))]
    assert first["created[lt]"] == [str(int(DAY_END.timestamp()))]
    assert first["expand[0]"] == ["data.source"]
    assert listing[1]["query"]["starting_after"] == ["txn_2"]


def test_stripe_down_is_a_provider_error(stripe_books: FakeStripeBalance) -> None:
    # given Stripe answering errors
    stripe_books.fail = True
    # when its books are listed, then a provider error says so
    with pytest.raises(PaymentProviderError):
        get_provider("stripe").list_transactions(DAY_START, DAY_END)


# --- PayPal -----------------------------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, body: Any) -> None:
        self.status_code = status
        self.body = body

    def json(self) -> Any:
        return self.body


def _info(transaction_id: str, code: str, value: str, **extra: Any) -> dict[str, Any]:
    return {
        "transaction_info": {
            "transaction_id": transaction_id,
            "transaction_event_code": code,
            "transaction_initiation_date": extra.pop("at", "2026-03-01T18:30:00+0000"),
            "transaction_amount": {"currency_code": "HKD", "value": value},
            "transaction_status": extra.pop("status", "S"),
            **extra,
        }
    }


class FakePayPalSearch:
    """Answers OAuth and Transaction Search like PayPal, one row per page."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.requests: list[dict[str, Any]] = []
        self.down = False

    def request(self, method: str, url: str, **kwargs: Any) -> FakeResponse:
        parts = urlsplit(url.removeprefix(PAYPAL_BASE))
        query = parse_qs(parts.query)
        self.requests.append(
            {"method": method, "path": parts.path, "query": query, "headers": kwargs.get("headers")}
        )
        if parts.path == "/v1/oauth2/token":
            return FakeResponse(200, {"access_token": "A21-search", "expires_in": 32400})
        if self.down:
            return FakeResponse(503, {"name": "SERVICE_UNAVAILABLE"})
        if parts.path == "/v1/reporting/transactions":
            page = int(query["page"][0])
            return FakeResponse(
                200,
                {
                    "transaction_details": self.rows[page - 1 : page],
                    "page": page,
                    "total_pages": len(self.rows),
                },
            )
        return FakeResponse(404, {"name": "RESOURCE_NOT_FOUND"})


@pytest.fixture
def paypal_books(settings: Any) -> Iterator[FakePayPalSearch]:
    settings.PAYMENT_PROVIDERS = ["sandbox", "paypal"]
    settings.PAYPAL_CLIENT_ID = "client"
    settings.PAYPAL_CLIENT_SECRET = "secret"
    paypal.reset_token_cache()
    fake = FakePayPalSearch(
        [
            _info(
                "CAP1",
                "T0006",
                "50.00",
                fee_amount={"currency_code": "HKD", "value": "-2.10"},
                custom_field="6f1c3d0e-0000-4000-8000-000000000001",
            ),
            _info("REF1", "T1107", "-20.00", paypal_reference_id="CAP0"),
            _info("WD1", "T0400", "-100.00"),
            # not leb's: a mass payment, a dispute hold and a fee reversal
            _info("MP1", "T0001", "-10.00"),
            _info("HOLD1", "T1110", "-30.00"),
            _info("FEE1", "T1108", "1.00"),
            _info("CAP2", "T0006", "30.00", status="P"),
            _info("CAP3", "T0006", "30.00", status="D"),
        ]
    )
    previous, paypal.http_session = paypal.http_session, fake
    try:
        yield fake
    finally:
        paypal.http_session = previous
        paypal.reset_token_cache()


def test_paypal_lists_the_days_captures_and_refunds(paypal_books: FakePayPalSearch) -> None:
    # when PayPal's books are listed for the day
    records = get_provider("paypal").list_transactions(DAY_START, DAY_END)
    # then leb's captures and refunds come back; withdrawals, mass payments,
    # dispute holds, fee reversals and denied ones do not
    assert [
        (r.transaction_id, r.kind, r.amount, r.reference, r.fee, r.pending) for r in records
    ] == [
        ("CAP1", CAPTURE, 5000, "CAP1", 210, False),
        ("REF1", REFUND, 2000, "CAP0", 0, False),
        ("CAP2", CAPTURE, 3000, "CAP2", 0, True),
    ]
    assert records[0].attempt_id == "6f1c3d0e-0000-4000-8000-000000000001"
    # and every page was asked for the day with the client's token
    searches = [r for r in paypal_books.requests if r["path"] == "/v1/reporting/transactions"]
    assert [r["query"]["page"] for r in searches] == [[str(n)] for n in range(1, 9)]
    assert searches[0]["query"]["start_date"] == ["2026-03-01T16:00:00+0000"]
    assert searches[0]["query"]["end_date"] == ["2026-03-02T15:59:59+0000"]
    assert searches[0]["headers"]["Authorization"] == "Bearer A21-search"


def test_paypal_down_is_a_provider_error(paypal_books: FakePayPalSearch) -> None:
    # given PayPal answering 503
    paypal_books.down = True
    # when its books are listed, then a provider error says so
    with pytest.raises(PaymentProviderError):
        get_provider("paypal").list_transactions(DAY_START, DAY_END)


def test_paypal_unreadable_amount_is_refused(paypal_books: FakePayPalSearch) -> None:
    # given a row whose amount is not money
    paypal_books.rows = [_info("CAP9", "T0006", "fifty")]
    # when the day is listed, then the answer is refused rather than skipped
    with pytest.raises(PaymentProviderError) as raised:
        get_provider("paypal").list_transactions(DAY_START, DAY_END)
    assert raised.value.code == "bad_answer"
