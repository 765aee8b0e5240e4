"""Promotion budgets held in slices, so concurrent top-ups do not queue on one row.

A budgeted promotion's budget is split into N `PromotionBudgetSlice` rows
(PROMOTION_BUDGET_SLICES, 16 by default). While its use is within the budget,
the allotments sum to the budget and each slice's use stays within its own
allotment, so the sum of uses can never pass the budget:

- A reservation is one statement: take the cost from the first slice with
  room, starting at the line's own slot, skipping slices other transactions
  hold (SKIP LOCKED on PostgreSQL). Concurrent top-ups on different lines
  land on different rows.
- When no unlocked slice has room, the exact path locks all the promotion's
  slices in slot order (waiting for the transactions that hold them), and
  reserves if the whole budget has room, moving the unused allotments to
  where they are needed. So a reservation is refused only when the budget
  really lacks room.
- Use above the budget (the budget lowered below it, or a late payment that
  took its bonus back regardless) sets every allotment to 0: then no slice
  has room, and each reservation takes the exact path until releases bring
  the use back within the budget.

A slice's use is exactly the costs of the redemptions charged to it (each
records its slot), so a release gives the cost back where it was taken.
On SQLite the same statements run without the row locks: its writers are
serialised anyway."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.db.models import F

from .models import Promotion, PromotionBudgetSlice


class BudgetShort(Exception):
    """The promotion's budget has less room left than the cost."""


def slice_count() -> int:
    return max(1, int(settings.PROMOTION_BUDGET_SLICES))


def spread(total: int, count: int, unit: int = 1) -> list[int]:
    """`total` split over `count` parts in whole `unit`s as evenly as it goes,
    the larger parts first; what is left below one unit goes to the first."""
    units, rest = divmod(max(total, 0), unit)
    each, extra = divmod(units, count)
    parts = [(each + (1 if i < extra else 0)) * unit for i in range(count)]
    parts[0] += rest
    return parts


def allotments(budget: int, used: list[int], unit: int = 1) -> list[int]:
    """Allotments for slices with these uses: each keeps its use plus a share
    of the room left, so they sum to the budget; all 0 when the use is above it."""
    room = budget - sum(used)
    if room < 0:
        return [0] * len(used)
    return [u + share for u, share in zip(used, spread(room, len(used), unit), strict=True)]


def _lock_all(promotion_id: int) -> list[PromotionBudgetSlice]:
    # Slot order: two transactions locking all slices never deadlock each other.
    return list(
        PromotionBudgetSlice.objects.select_for_update()
        .filter(promotion_id=promotion_id)
        .order_by("slot")
    )


def _create(promotion_id: int, budget: int | None, opening_used: int = 0) -> None:
    """The promotion's slices, the opening use (if any) on the first. The
    caller holds the promotion's row, so no one else creates them meanwhile."""
    used = [opening_used] + [0] * (slice_count() - 1)
    allotted = allotments(budget, used) if budget is not None else [0] * len(used)
    PromotionBudgetSlice.objects.bulk_create(
        PromotionBudgetSlice(promotion_id=promotion_id, slot=slot, allotment=a, used=u)
        for slot, (a, u) in enumerate(zip(allotted, used, strict=True))
    )


def _write(slices: list[PromotionBudgetSlice], new: list[tuple[int, int]]) -> None:
    changed = []
    for piece, (allotment, used) in zip(slices, new, strict=True):
        if (piece.allotment, piece.used) != (allotment, used):
            piece.allotment, piece.used = allotment, used
            changed.append(piece)
    if changed:
        PromotionBudgetSlice.objects.bulk_update(changed, ["allotment", "used"])


def sync_slices(promo: Promotion, *, opening_used: int = 0) -> None:
    """After a promotion is saved: create its slices, or share its (new)
    budget out over them. A promotion without a budget keeps the slices it
    has, their use unchanged, for when it gets one again. The caller's save
    holds the promotion's row."""
    if promo.budget is None and not opening_used:
        return
    slices = _lock_all(promo.pk)
    if not slices:
        _create(promo.pk, promo.budget, opening_used)
        return
    if promo.budget is not None:
        used = [piece.used for piece in slices]
        _write(slices, list(zip(allotments(promo.budget, used), used, strict=True)))


def _take_fast(promotion_id: int, cost: int, preferred: int) -> int | None:
    """Take `cost` from one slice with room that no other transaction holds,
    the preferred slot first: one statement. The slot, or None."""
    table = PromotionBudgetSlice._meta.db_table
    skip_locked = (
        " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET used = used + %s "  # noqa: S608 (names are the model's own)
            f"WHERE id = (SELECT id FROM {table} "
            "WHERE promotion_id = %s AND used + %s <= allotment "
            f"ORDER BY slot < %s, slot LIMIT 1{skip_locked}) "
            "AND used + %s <= allotment RETURNING slot",
            [cost, promotion_id, cost, preferred, cost],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _take_exact(promotion_id: int, cost: int, preferred: int, force: bool) -> int | None:
    """With all the promotion's slices locked: reserve if the whole budget has
    room (or regardless, when `force`), sharing the room left out again in
    pieces of this cost. None when the promotion no longer has a budget."""
    slices = _lock_all(promotion_id)
    if not slices:
        # Budgeted but never sliced (a budget set without saving the
        # promotion): create them once, under the promotion's row lock.
        budget = (
            Promotion.objects.select_for_update()
            .filter(pk=promotion_id)
            .values_list("budget", flat=True)
            .get()
        )
        slices = _lock_all(promotion_id)
        if not slices:
            _create(promotion_id, budget)
            slices = _lock_all(promotion_id)
    # Read after the slices are locked: a budget edit changes both at once.
    budget = Promotion.objects.filter(pk=promotion_id).values_list("budget", flat=True).get()
    if budget is None:
        return None
    target = preferred % len(slices)
    used = [piece.used for piece in slices]
    used[target] += cost
    if sum(used) <= budget:
        allotted = allotments(budget, used, unit=cost)
    elif force:
        allotted = [0] * len(used)
    else:
        used[target] -= cost
        if sum(used) > budget:
            _write(slices, [(0, u) for u in used])
        raise BudgetShort
    _write(slices, list(zip(allotted, used, strict=True)))
    return slices[target].slot


def take(promotion_id: int, cost: int, preferred: int, *, force: bool = False) -> int | None:
    """Charge `cost` to the promotion's budget: the slot it was charged to
    (None: the promotion has no budget any more). BudgetShort when the budget
    lacks room, unless `force` (a late payment's bonus, which is owed)."""
    slot = _take_fast(promotion_id, cost, preferred % slice_count())
    if slot is not None:
        return slot
    return _take_exact(promotion_id, cost, preferred, force)


def give_back(promotion_id: int, slot: int, cost: int) -> None:
    PromotionBudgetSlice.objects.filter(promotion_id=promotion_id, slot=slot).update(
        used=F("used") - cost
    )
