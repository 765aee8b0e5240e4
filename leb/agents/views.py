"""The public check (反诈骗): is this seller an authorised leb agent? Anyone
may ask, by code, shop address, phone number or handle; only public fields
are shown, and searches are rate-limited per address."""

from __future__ import annotations

from typing import Any

from babel import Locale
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from leb.common import ratelimit
from leb.common.formatting import babel_locale

from . import queries
from .forms import VerifyForm

DEFAULT_RATE = "20/60"


def verify_rate() -> tuple[int, int]:
    """(searches, seconds) per client address from AGENTS_VERIFY_RATE."""
    raw = str(getattr(settings, "AGENTS_VERIFY_RATE", DEFAULT_RATE) or DEFAULT_RATE)
    count, _sep, seconds = raw.partition("/")
    return int(count), max(1, int(seconds or 60))


def region_name(region: str, language: str | None = None) -> str:
    """ "HK" -> "Hong Kong" / "中国香港特别行政区" in the page's language."""
    try:
        names = Locale.parse(babel_locale(language)).territories
    except (ValueError, TypeError):
        return region
    return str(names.get(region.upper(), region))


def _private(response: HttpResponse) -> HttpResponse:
    # What someone searched for is theirs alone; keep it out of shared caches.
    response["Cache-Control"] = "private, no-store"
    return response


@require_safe
def verify(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"searched": False, "message": ""}
    if "q" not in request.GET:
        form = VerifyForm()
        return _private(render(request, "agents/public_verify.html", {**context, "form": form}))
    form = VerifyForm(request.GET)
    context["form"] = form
    context["query"] = str(request.GET.get("q", ""))[: queries.MAX_QUERY]
    limit, window = verify_rate()
    if not ratelimit.hit("agents-verify", ratelimit.client_ip(request), limit, window):
        context["message"] = _(
            "You have made many searches in a short time. Please wait a minute and try again."
        )
        response = render(request, "agents/public_verify.html", context, status=429)
        response["Retry-After"] = str(window)
        return _private(response)
    if not form.is_valid():
        return _private(render(request, "agents/public_verify.html", context, status=400))
    agent = queries.find_public_agent(form.search())
    context.update(
        searched=True,
        agent=agent,
        region=region_name(agent.region) if agent else "",
    )
    return _private(render(request, "agents/public_verify.html", context))


@require_safe
def agent_list(request: HttpRequest) -> HttpResponse:
    """Every authorised agent, by region; ?region=HK for one region."""
    regions = queries.active_regions()
    wanted = str(request.GET.get("region", "")).strip().upper()
    if wanted not in regions:
        wanted = ""
    agents = queries.active_agents(wanted)
    groups: list[dict[str, Any]] = []
    for agent in agents:
        if not groups or groups[-1]["code"] != agent.region:
            groups.append({"code": agent.region, "name": region_name(agent.region), "agents": []})
        groups[-1]["agents"].append(agent)
    context = {
        "groups": groups,
        "regions": [(code, region_name(code)) for code in regions],
        "region": wanted,
    }
    return render(request, "agents/public_list.html", context)
