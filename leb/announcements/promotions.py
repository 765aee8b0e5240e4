"""A promotion's banner and summary in the viewer's language, written only
from the promotion's own fields (through leb.catalog.queries), so the words
cannot promise more than checkout gives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from babel.lists import format_list
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leb.catalog.models import Channel
from leb.catalog.queries import PromotionView
from leb.common.formatting import babel_locale, format_local_datetime, format_money


def _listed(items: list[str]) -> str:
    return format_list(items, locale=babel_locale()) if items else ""


def _extra_days(days: int) -> str:
    return ngettext("%(days)d extra day of validity", "%(days)d extra days of validity", days) % {
        "days": days
    }


def _extra_credit(amount: int, currency: str) -> str:
    return _("%(amount)s extra credit") % {"amount": format_money(amount, currency)}


def benefits(view: PromotionView) -> list[str]:
    promo = view.promotion
    items = []
    if promo.bonus_credit_percent:
        items.append(_("%(percent)d%% extra credit") % {"percent": promo.bonus_credit_percent})
    if promo.bonus_credit_fixed:
        items.append(_extra_credit(promo.bonus_credit_fixed, promo.currency))
    if promo.bonus_days:
        items.append(_extra_days(promo.bonus_days))
    if promo.discount_percent:
        items.append(_("%(percent)d%% off the price") % {"percent": promo.discount_percent})
    if promo.discount_fixed:
        items.append(
            _("%(amount)s off the price")
            % {"amount": format_money(promo.discount_fixed, promo.currency)}
        )
    return items


def scope(view: PromotionView) -> str:
    promo = view.promotion
    if promo.plans.all():
        plans = _listed([plan.display_name() for plan in view.plans])
        if promo.applies_to_free_amount:
            return _("%(plans)s and top-ups of any amount") % {"plans": plans}
        return plans
    if promo.applies_to_free_amount:
        return _("every %(currency)s plan and top-ups of any amount") % {"currency": promo.currency}
    return _("every %(currency)s plan") % {"currency": promo.currency}


def headline(view: PromotionView) -> str:
    return _("%(benefits)s on %(scope)s") % {
        "benefits": _listed(benefits(view)),
        "scope": scope(view),
    }


def example(view: PromotionView) -> str:
    """What the cheapest applicable plan really gets: its quote's numbers."""
    if not view.plans:
        return ""
    plan = view.plans[0]
    discount, bonus, days = view.gains(plan)
    gains = []
    if bonus:
        gains.append(_extra_credit(bonus, plan.currency))
    if days:
        gains.append(_extra_days(days))
    if discount:
        gains.append(
            _("you pay %(price)s instead of %(list_price)s")
            % {
                "price": format_money(plan.price - discount, plan.currency),
                "list_price": format_money(plan.price, plan.currency),
            }
        )
    return _("For example, %(plan)s: %(gains)s.") % {
        "plan": plan.display_name(),
        "gains": _listed(gains),
    }


def details(view: PromotionView, tz: tzinfo) -> list[str]:
    promo = view.promotion
    lines = []
    if promo.promo_code:
        lines.append(_("Enter the code %(code)s when you top up.") % {"code": promo.promo_code})
    else:
        lines.append(_("Applied automatically at checkout: no code needed."))
    if promo.channels:
        labels = dict(Channel.choices)
        channels = _listed([str(labels.get(c, c)) for c in promo.channels])
        lines.append(_("Only when you top up by: %(channels)s.") % {"channels": channels})
    lines.append(
        _("From %(start)s until %(end)s.")
        % {
            "start": format_local_datetime(promo.starts_at, tz),
            "end": format_local_datetime(promo.ends_at, tz),
        }
    )
    if promo.per_line_limit:
        lines.append(
            ngettext("Once per line.", "Up to %(count)d times per line.", promo.per_line_limit)
            % {"count": promo.per_line_limit}
        )
    if promo.budget is not None:
        lines.append(_("While the promotion's budget lasts."))
    shown = example(view)
    if shown:
        lines.append(shown)
    return lines


@dataclass(frozen=True)
class PromotionText:
    """Everything a page shows about one promotion, already in words."""

    view: PromotionView
    headline: str
    details: list[str]
    name: str

    @property
    def state(self) -> str:
        return self.view.state

    @property
    def has_ended(self) -> bool:
        return self.view.has_ended


def promotion_text(view: PromotionView, tz: tzinfo) -> PromotionText:
    return PromotionText(view, headline(view), details(view, tz), view.promotion.display_name())
