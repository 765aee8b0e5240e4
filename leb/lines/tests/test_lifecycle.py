from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leb.catalog.models import Plan
from leb.catalog.quotes import QuoteError
from leb.ledger.queries import verify_ledger
from leb.lines import lifecycle
from leb.lines.actions import do_activate_line, do_create_line, sweep_lines
from leb.lines.models import ExtensionRule, Line, LineEvent, LineStatus, NumberPolicy, NumberStatus
from leb.testing import make_hk_msisdn, make_iccid, topup

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def policy(**kw: Any) -> SimpleNamespace:
    base = dict(
        first_topup_days=30,
        grace_days=10,
        suspension_days=20,
        quarantine_days=90,
        max_validity_days=365,
        extension_rule=ExtensionRule.STACK,
    )
    return SimpleNamespace(**{**base, **kw})


def line(
    valid_until: datetime | None, status: str = LineStatus.ACTIVE, **kw: Any
) -> SimpleNamespace:
    return SimpleNamespace(
        status=status, valid_until=valid_until, terminated_at=None, policy=policy(**kw)
    )


@pytest.mark.parametrize(
    ("offset_days", "expected"),
    [
        (-1, "active"),
        (0, "grace"),
        (9, "grace"),
        (10, "suspended"),
        (29, "suspended"),
        (30, "terminated"),
    ],
)
def test_effective_status_follows_the_dates(offset_days: int, expected: str) -> None:
    # given a line valid until T0 with 10 days grace and 20 days suspension
    subject = line(T0)
    # when / then
    assert lifecycle.effective_status(subject, T0 + timedelta(days=offset_days)) == expected


def test_inventory_and_terminated_are_sticky() -> None:
    assert lifecycle.effective_status(line(None, LineStatus.INVENTORY), T0) == "inventory"
    assert (
        lifecycle.effective_status(line(T0 + timedelta(days=99), LineStatus.TERMINATED), T0)
        == "terminated"
    )


def test_timeline_gives_dates_of_what_happens_next() -> None:
    entries = lifecycle.timeline(line(T0), T0 - timedelta(days=5))
    assert [(e.event, e.at) for e in entries] == [
        ("grace_from", T0),
        ("suspended_from", T0 + timedelta(days=10)),
        ("number_lost", T0 + timedelta(days=30)),
    ]
    assert not any(e.is_past for e in entries)


def test_uk_style_dates() -> None:
    # 180 days validity, receive-only until day 269, number lost at day 273
    uk = line(T0 + timedelta(days=180), grace_days=89, suspension_days=4)
    events = {e.event: (e.at - T0).days for e in lifecycle.timeline(uk, T0)}
    assert events == {"grace_from": 180, "suspended_from": 269, "number_lost": 273}


def test_stack_rule_adds_to_remaining_validity_up_to_the_cap() -> None:
    p = policy(max_validity_days=365)
    ext = lifecycle.extend_validity(p, T0 + timedelta(days=100), T0, 180)
    assert ext.valid_until == T0 + timedelta(days=280) and not ext.capped
    ext = lifecycle.extend_validity(p, T0 + timedelta(days=300), T0, 180)
    assert ext.valid_until == T0 + timedelta(days=365) and ext.capped
    assert ext.days_lost_to_cap == 115


def test_stack_after_expiry_counts_from_now() -> None:
    ext = lifecycle.extend_validity(policy(), T0 - timedelta(days=5), T0, 30)
    assert ext.valid_until == T0 + timedelta(days=30)


def test_reset_rule_never_shortens() -> None:
    p = policy(extension_rule=ExtensionRule.RESET, max_validity_days=None)
    assert lifecycle.extend_validity(
        p, T0 + timedelta(days=10), T0, 180
    ).valid_until == T0 + timedelta(days=180)
    assert lifecycle.extend_validity(
        p, T0 + timedelta(days=200), T0, 180
    ).valid_until == T0 + timedelta(days=200)


def test_cap_never_takes_away_existing_validity() -> None:
    p = policy(max_validity_days=30)
    ext = lifecycle.extend_validity(p, T0 + timedelta(days=60), T0, 10)
    assert ext.valid_until == T0 + timedelta(days=60)


def test_transitions_between_lists_every_missed_step() -> None:
    steps = lifecycle.transitions_between("active", T0, policy(), T0 + timedelta(days=40))
    assert [(a, b) for a, b, _ in steps] == [
        ("active", "grace"),
        ("grace", "suspended"),
        ("suspended", "terminated"),
    ]
    assert [at for _, _, at in steps] == [T0, T0 + timedelta(days=10), T0 + timedelta(days=30)]


# --- sweep ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_sweep_persists_lagged_transitions_and_forfeits(
    make_line: Any, hkd_plan: Any, now: datetime, ledger_ok: Any
) -> None:
    # given an active line with a balance, far past its whole lifecycle
    subject = make_line()
    topup(subject, hkd_plan, now=now)
    subject.refresh_from_db()
    # terminated at +90 days; the number stays quarantined until +180
    later = subject.valid_until + timedelta(days=120)
    # when the sweep runs once
    result = sweep_lines(later)
    # then it walked through every state, forfeited the balance and quarantined the number
    subject.refresh_from_db()
    assert subject.status == LineStatus.TERMINATED and subject.next_transition_at is None
    kinds = list(
        LineEvent.objects.filter(line=subject, kind="status_changed").values_list(
            "to_status", flat=True
        )
    )
    assert kinds == ["grace", "suspended", "terminated"]
    assert result.forfeited_minor == {"HKD": 5000}
    assert subject.wallet is not None
    subject.wallet.refresh_from_db()
    assert subject.wallet.balance == 0
    number = subject.phone_number
    number.refresh_from_db()
    assert number.status == NumberStatus.QUARANTINED
    ledger_ok()


@pytest.mark.django_db
def test_sweep_is_idempotent_and_releases_numbers_later(
    make_line: Any, now: datetime, ledger_ok: Any
) -> None:
    subject = make_line()
    end = subject.valid_until + timedelta(days=95)
    first = sweep_lines(end)
    second = sweep_lines(end)
    assert first.terminated == 1 and second.lines == 0 and second.transitions == 0
    assert LineEvent.objects.filter(line=subject, kind="status_changed").count() == 3
    # terminated at valid_until + 90 days; quarantine lasts 90 days from then
    assert sweep_lines(end + timedelta(days=84)).numbers_released == 0
    assert sweep_lines(end + timedelta(days=86)).numbers_released == 1
    subject.phone_number.refresh_from_db()
    assert subject.phone_number.status == NumberStatus.AVAILABLE
    ledger_ok()


@pytest.mark.django_db
def test_sweep_only_touches_due_lines(make_line: Any, now: datetime) -> None:
    due = make_line()
    not_due = make_line(at=now + timedelta(days=20))
    result = sweep_lines(now + timedelta(days=31))
    assert result.lines == 1
    due.refresh_from_db()
    not_due.refresh_from_db()
    assert due.status == "grace" and not_due.status == "active"


@pytest.mark.django_db
def test_sweep_resumes_in_batches(make_line: Any, now: datetime) -> None:
    lines = [make_line() for _ in range(7)]
    result = sweep_lines(now + timedelta(days=31), batch_size=3)
    assert result.lines == 7 and result.batches == 3
    assert set(
        Line.objects.filter(pk__in=[x.pk for x in lines]).values_list("status", flat=True)
    ) == {"grace"}


# --- property test ---------------------------------------------------------------------

policies: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    first_topup_days=st.integers(1, 60),
    grace_days=st.integers(0, 40),
    suspension_days=st.integers(0, 40),
    quarantine_days=st.integers(0, 60),
    max_validity_days=st.one_of(st.none(), st.integers(60, 400)),
    extension_rule=st.sampled_from([ExtensionRule.STACK, ExtensionRule.RESET]),
)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(0, 120), st.integers(0, 23)),
        st.tuples(st.just("topup"), st.integers(1, 400), st.just(0)),
        st.tuples(st.just("sweep"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=12,
)
_example = iter(range(10**9))


@pytest.mark.django_db
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(policy_fields=policies, script=steps)
def test_property_sweep_agrees_with_effective_status(
    policy_fields: dict[str, Any], script: list[Any]
) -> None:
    n = next(_example)
    pol = NumberPolicy.objects.create(code=f"prop-{n}", name="p", restore_fee=0, **policy_fields)
    now = T0
    subject = do_create_line(
        iccid=make_iccid(900_000 + n),
        policy=pol,
        currency="HKD",
        msisdn=make_hk_msisdn(500_000 + n),
        now=now,
    )
    subject = do_activate_line(subject, now=now)
    cap = pol.max_validity_days
    for op, a, b in script:
        if op == "advance":
            now += timedelta(days=a, hours=b)
        elif op == "topup":
            plan = Plan.objects.create(
                code=f"p{n}-{next(_example)}",
                name_en="p",
                name_zh_hans="p",
                name_zh_hant="p",
                currency="HKD",
                price=100,
                credit=100,
                validity_days=a,
            )
            subject.refresh_from_db()
            before = lifecycle.effective_status(subject, now)
            try:
                topup(subject, plan, now=now)
            except QuoteError:
                assert before == LineStatus.TERMINATED
            else:
                subject.refresh_from_db()
                # a top-up in grace or suspension (or active) restores active
                assert before != LineStatus.TERMINATED
                assert subject.status == LineStatus.ACTIVE
                assert lifecycle.effective_status(subject, now) == LineStatus.ACTIVE
        else:
            sweep_lines(now)
            subject.refresh_from_db()
            assert subject.status == lifecycle.effective_status(subject, now)
        subject.refresh_from_db()
        if cap is not None and subject.valid_until is not None and subject.status != "terminated":
            assert subject.valid_until <= now + timedelta(days=max(cap, pol.first_topup_days))
    sweep_lines(now)
    subject.refresh_from_db()
    assert subject.status == lifecycle.effective_status(subject, now)
    assert verify_ledger().ok
