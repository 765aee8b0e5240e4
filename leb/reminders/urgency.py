"""How close a line is to a consequence, in plain words: the warning shown on
the line page, the "my lines" list, the home quick check and the notification
centre. A pure function of the line's loaded fields and its policy (no query),
so a list page can show it for every line."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from leb.common.formatting import format_local_date, format_local_datetime, format_money
from leb.lines import lifecycle
from leb.lines.lifecycle import Urgency
from leb.lines.models import Line
from leb.topups.links import top_up_url

# Levels that get a notice; "ok" and "inventory" say nothing extra.
SHOWN = (Urgency.SOON, Urgency.URGENT, Urgency.GRACE, Urgency.SUSPENDED, Urgency.TERMINATED)


@dataclass(frozen=True)
class UrgencyNotice:
    level: str
    # The word that says the level, so colour is never the only signal.
    label: str
    headline: str
    details: list[str] = field(default_factory=list)
    action_url: str = ""
    action_label: str = ""
    # A prominent button for the levels that need a top-up now.
    prominent: bool = False

    @property
    def role(self) -> str:
        # A warning that needs action is announced; a milder note is a status.
        return "alert" if self.prominent or self.level == Urgency.TERMINATED else "status"


def _label(level: str) -> str:
    labels = {
        Urgency.SOON: _("Ends soon"),
        Urgency.URGENT: _("Urgent"),
        Urgency.GRACE: _("Receive-only"),
        Urgency.SUSPENDED: _("Suspended"),
        Urgency.TERMINATED: _("Number lost"),
    }
    return labels[level]


def notice_for(line: Line, now: datetime, tz: tzinfo) -> UrgencyNotice | None:
    """The notice for `line` at `now`, dates in `tz`; None when all is well.

    Never mentions the balance or the owner: the public quick check shows it
    too. The restore fee and the forfeit rule are the policy's, not the line's."""
    state = lifecycle.urgency(line, now)
    if state.level not in SHOWN or state.valid_until is None:
        return None
    policy = line.policy
    until = state.valid_until

    def day(value: datetime) -> str:
        return format_local_date(value, tz)

    keep_by = format_local_date(lifecycle.last_keep_day(until, policy, tz), tz)
    top_up = top_up_url(line.pk)
    if state.level == Urgency.SOON:
        return UrgencyNotice(
            level=state.level,
            label=_label(state.level),
            headline=_("Validity ends on %(date)s.") % {"date": day(until)},
            details=[_("Top up before then to keep the line active.")],
            action_url=top_up,
            action_label=_("Top up"),
        )
    if state.level == Urgency.URGENT:
        days = state.days_left or 0
        if days < 1:
            headline = _("Validity ends today, at %(moment)s.") % {
                "moment": format_local_datetime(until, tz)
            }
        else:
            headline = ngettext(
                "Validity ends in %(days)d day, on %(date)s.",
                "Validity ends in %(days)d days, on %(date)s.",
                days,
            ) % {"days": days, "date": day(until)}
        assert state.suspends_at is not None
        return UrgencyNotice(
            level=state.level,
            label=_label(state.level),
            headline=headline,
            details=[
                _(
                    "Without a top-up the number can then only receive calls and SMS, "
                    "is suspended from %(suspended)s and is lost after %(last_day)s."
                )
                % {"suspended": day(state.suspends_at), "last_day": keep_by},
            ],
            action_url=top_up,
            action_label=_("Top up now"),
            prominent=True,
        )
    if state.level == Urgency.GRACE:
        assert state.suspends_at is not None
        return UrgencyNotice(
            level=state.level,
            label=_label(state.level),
            headline=_("Validity ended on %(date)s.") % {"date": day(until)},
            details=[
                _("The number can still receive calls and SMS, but cannot call out or use data."),
                _("It is suspended from %(date)s.") % {"date": day(state.suspends_at)},
                _("The number is lost after %(date)s. Top up by then to keep it.")
                % {"date": keep_by},
            ],
            action_url=top_up,
            action_label=_("Top up now"),
            prominent=True,
        )
    if state.level == Urgency.SUSPENDED:
        details = [
            _("The line is barred both ways: no calls, SMS or data, in or out."),
            _("Top up by %(date)s to keep the number.") % {"date": keep_by},
        ]
        if policy.restore_fee:
            details.append(
                _("Restoring the line costs %(fee)s, taken from the top-up.")
                % {"fee": format_money(policy.restore_fee, line.currency)}
            )
        if policy.forfeit_balance_at_termination:
            details.append(_("If the number is lost, any balance left on it is forfeited."))
        return UrgencyNotice(
            level=state.level,
            label=_label(state.level),
            headline=_("This line is suspended."),
            details=details,
            action_url=top_up,
            action_label=_("Top up now"),
            prominent=True,
        )
    lost = state.number_lost_at or until
    return UrgencyNotice(
        level=state.level,
        label=_label(state.level),
        headline=_("The number was lost on %(date)s.") % {"date": day(lost)},
        details=[
            _(
                "It can no longer be topped up. To keep using leb, get a new line; "
                "contact support if you think this is a mistake."
            )
        ],
        action_url=reverse("support:contact"),
        action_label=_("Contact support"),
    )
