"""What the subscriber's line page and the back office show about an eSIM."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from leb.lines.actions import needs_real_name
from leb.lines.models import Line, RealNameRegistration

from .actions import redownloads_left
from .models import Profile, ProfileEvent, ProfileEventKind, ProfileState

RECENT_EVENTS = 10

EXPLANATIONS: dict[str, Promise] = {
    ProfileState.AVAILABLE: _("Your eSIM has not been ordered yet."),
    ProfileState.RESERVED: _("Your eSIM is being prepared."),
    ProfileState.CONFIRMED: _("Your eSIM is ready but not yet released for download."),
    ProfileState.RELEASED: _("Your eSIM is ready: scan the code below with your phone."),
    ProfileState.DOWNLOADED: _("Your phone has downloaded the eSIM and is installing it."),
    ProfileState.INSTALLED: _("The eSIM is installed on your phone."),
    ProfileState.DELETED: _("The eSIM was deleted from your phone."),
    ProfileState.CANCELLED: _("The eSIM order was cancelled. Contact support for a new one."),
}

# The steps a subscriber follows, in order, for the progress list.
STEPS: list[tuple[str, Promise]] = [
    (ProfileState.RELEASED, _("Ready to download")),
    (ProfileState.DOWNLOADED, _("Downloaded")),
    (ProfileState.INSTALLED, _("Installed")),
]
_STEP_RANK: dict[str, int] = {
    ProfileState.RELEASED: 1,
    ProfileState.DOWNLOADED: 2,
    ProfileState.INSTALLED: 3,
}

# History entries the subscriber sees (not eligibility checks or repeats).
SHOWN_EVENTS = {
    ProfileEventKind.CONFIRMED,
    ProfileEventKind.RELEASED,
    ProfileEventKind.CANCELLED,
    ProfileEventKind.DOWNLOADED,
    ProfileEventKind.INSTALLED,
    ProfileEventKind.ENABLED,
    ProfileEventKind.DISABLED,
    ProfileEventKind.DELETED,
    ProfileEventKind.FAILED,
    ProfileEventKind.REDOWNLOAD,
}


@dataclass(frozen=True)
class EsimStatus:
    profile: Profile | None
    state: str
    state_label: str
    explanation: str
    activation_code: str
    real_name_required: bool
    real_name: RealNameRegistration | None
    can_redownload: bool
    redownloads_left: int
    steps: list[tuple[str, bool]] = field(default_factory=list)
    events: list[ProfileEvent] = field(default_factory=list)


def esim_status(line: Line, now: datetime) -> EsimStatus | None:
    """The eSIM facts for the line page; None for a line without a profile record."""
    profile = Profile.objects.filter(line=line).first()
    registration = RealNameRegistration.objects.filter(line=line).first()
    blocked = needs_real_name(line)
    if profile is None:
        if not line.policy.requires_real_name:
            return None
        return EsimStatus(
            profile=None,
            state="",
            state_label="",
            explanation="",
            activation_code="",
            real_name_required=blocked,
            real_name=registration,
            can_redownload=False,
            redownloads_left=0,
        )
    code = profile.activation_code if profile.activation_code_usable and not blocked else ""
    left = redownloads_left(profile, now) if profile.state == ProfileState.DELETED else 0
    rank = _STEP_RANK.get(profile.state, 0)
    events = list(
        profile.events.filter(kind__in=SHOWN_EVENTS).order_by("-happened_at", "-pk")[:RECENT_EVENTS]
    )
    return EsimStatus(
        profile=profile,
        state=profile.state,
        state_label=str(profile.get_state_display()),
        explanation=str(EXPLANATIONS[profile.state]),
        activation_code=code,
        real_name_required=blocked,
        real_name=registration,
        can_redownload=profile.state == ProfileState.DELETED and left > 0,
        redownloads_left=left,
        steps=[(str(label), rank >= _STEP_RANK[state]) for state, label in STEPS],
        events=events,
    )
