"""Who the simulated subscribers are and how they behave.

Each line belongs to one subscriber of one group. Their state lives here, in
memory; only a subscriber who acts touches the database. Behaviour is drawn
from one seeded random generator, so the same seed gives the same run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

AUTOKEEP = "autokeep"
REACTIVE = "reactive"
FORGETFUL = "forgetful"
GROUPS = (AUTOKEEP, REACTIVE, FORGETFUL)

# Auto-keep rules.
CHEAPEST = "cheapest"
THRESHOLD = "threshold"

# Card trouble of an auto-keep subscriber.
CARD_OK = ""
CARD_DECLINES = "declines"
CARD_EXPIRES = "expires"

# Reactive subscribers: most answer the first reminders, some only the last.
PROMPT = "prompt"
LAST_ONLY = "last_only"

# Notification kinds the reminders app sends before a number is lost.
EXPIRY_REMINDER = "expiry_reminder"
GRACE_STARTED = "grace_started"
LINE_SUSPENDED = "line_suspended"
NUMBER_LOSS_WARNING = "number_loss_warning"
REMINDER_KINDS = (EXPIRY_REMINDER, GRACE_STARTED, LINE_SUSPENDED, NUMBER_LOSS_WARNING)
# What makes an auto-keep subscriber with card trouble update the card.
CARD_KINDS = ("autokeep_failed", "card_expiring", "autokeep_gave_up")

# Sandbox test cards (leb.payments.providers.sandbox.TEST_CARDS).
GOOD_CARD = "4242424242424242"
DECLINING_CARD = "4000000000000002"


@dataclass
class Shares:
    autokeep: float = 0.3
    reactive: float = 0.4
    # forgetful: the rest
    card_trouble: float = 0.05  # of auto-keep subscribers
    last_only: float = 0.3  # of reactive subscribers
    with_account: float = 0.5  # of reactive and forgetful subscribers


@dataclass
class Subscriber:
    index: int
    group: str
    kind: str = ""  # rule (auto-keep) or PROMPT / LAST_ONLY (reactive)
    card: str = CARD_OK
    # Threshold rule: the plan to buy and when.
    plan_code: str = ""
    days_before: int | None = None
    has_account: bool = False
    language: str = "en"
    line_id: int = 0
    user_id: int | None = None
    # When a top-up or a card update is already planned, further messages
    # do not plan another one.
    busy_until: datetime | None = None
    card_fixed: bool = False
    lost: bool = False
    topups: int = 0
    late_topups: int = 0  # in grace or suspension
    too_late: int = 0  # tried after the number was gone
    messages: int = 0
    fixes: list[str] = field(default_factory=list)


def draw_population(
    count: int, shares: Shares, rng: random.Random, threshold_plans: tuple[str, ...] = ()
) -> list[Subscriber]:
    """`count` subscribers in the groups' shares (rounded, at least one of
    each group and of each card trouble when the population allows it)."""
    autokeep = round(count * shares.autokeep)
    reactive = round(count * shares.reactive)
    if count >= 3:
        autokeep, reactive = max(autokeep, 1), max(reactive, 1)
    forgetful = max(count - autokeep - reactive, 0)
    groups = [AUTOKEEP] * autokeep + [REACTIVE] * reactive + [FORGETFUL] * forgetful
    groups = groups[:count]
    rng.shuffle(groups)
    people = []
    trouble = max(round(autokeep * shares.card_trouble), 2 if autokeep >= 10 else 0)
    troubled = 0
    for index, group in enumerate(groups):
        person = Subscriber(index=index, group=group)
        person.language = rng.choice(("en", "zh-hans", "zh-hant"))
        if group == AUTOKEEP:
            person.has_account = True
            person.kind = CHEAPEST if rng.random() < 0.6 else THRESHOLD
            if person.kind == THRESHOLD:
                person.plan_code = rng.choice(threshold_plans) if threshold_plans else ""
                person.days_before = rng.randint(3, 21)
            if troubled < trouble:
                person.card = CARD_DECLINES if troubled % 2 == 0 else CARD_EXPIRES
                troubled += 1
        else:
            person.has_account = rng.random() < shares.with_account
            if group == REACTIVE:
                person.kind = LAST_ONLY if rng.random() < shares.last_only else PROMPT
        people.append(person)
    return people


def _lognormal_hours(rng: random.Random, median: float, sigma: float, cap: float) -> float:
    return min(rng.lognormvariate(math.log(median), sigma), cap)


@dataclass(frozen=True)
class Reaction:
    delay: timedelta
    what: str  # "topup" or "card"


def react(
    person: Subscriber, kind: str, *, days_left: float, last_offset: bool, rng: random.Random
) -> Reaction | None:
    """What `person` does on receiving a message of `kind`, if anything.

    `days_left`: days until the validity ends (negative once it has);
    `last_offset`: the message is the last reminder before the validity ends.
    """
    if person.group == AUTOKEEP:
        if person.card and not person.card_fixed and kind in CARD_KINDS:
            # Update the card a few hours to two days after the message.
            return Reaction(timedelta(hours=_lognormal_hours(rng, 8, 0.8, 48)), "card")
        return None
    if kind not in REMINDER_KINDS:
        return None
    if person.group == REACTIVE:
        if kind == EXPIRY_REMINDER:
            if person.kind == LAST_ONLY:
                if not last_offset:
                    return None
                chance, median, cap = 0.97, 4.0, 20.0
            else:
                # The earlier the reminder, the likelier "later".
                chance = 0.45 if days_left > 14 else (0.8 if days_left > 2 else 0.95)
                median, cap = 10.0, min(96.0, max(days_left * 24 * 0.8, 2.0))
        else:
            chance, median, cap = 0.97, 12.0, 72.0
        if rng.random() >= chance:
            return None
        return Reaction(timedelta(hours=_lognormal_hours(rng, median, 1.0, cap)), "topup")
    # Forgetful: ignore most reminders, sometimes top up late.
    if kind == EXPIRY_REMINDER:
        chance, median, cap = 0.08, 24.0, 24.0 * 10
    elif kind == GRACE_STARTED:
        chance, median, cap = 0.3, 24.0 * 4, 24.0 * 25
    elif kind == LINE_SUSPENDED:
        chance, median, cap = 0.35, 24.0 * 6, 24.0 * 40
    else:  # number_loss_warning
        chance, median, cap = 0.4, 24.0, 24.0 * 6
    if rng.random() >= chance:
        return None
    return Reaction(timedelta(hours=_lognormal_hours(rng, median, 1.0, cap)), "topup")


def choose_plan_code(person: Subscriber, codes_by_days: list[str], rng: random.Random) -> str:
    """Reactive subscribers mostly buy the best value for a year; the
    forgetful buy whatever is cheapest today."""
    if person.group == FORGETFUL:
        return codes_by_days[0] if rng.random() < 0.6 else codes_by_days[1]
    return codes_by_days[-1] if rng.random() < 0.6 else codes_by_days[1]
