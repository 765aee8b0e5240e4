"""/api/v1 endpoints of the public agent check, mounted on the one API in
leb/apiv1/api.py: anyone may ask whether a seller is an authorised agent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema

from leb.common.problems import Problem
from leb.common.schemas import ProblemOut
from leb.common.throttles import ClientIPThrottle

from . import queries

router = Router(tags=["agents"])
verify_throttle = ClientIPThrottle("agent_verify", "API_AGENT_VERIFY_RATE", "20/m")
list_throttle = ClientIPThrottle("agent_list", "API_AGENT_LIST_RATE", "30/m")
ERRORS: dict[int, Any] = {422: ProblemOut, 429: ProblemOut}


class ChannelOut(Schema):
    kind: str = Field(description="`shop_url`, `handle` or `phone`.")
    kind_label: str
    value: str = Field(
        description="Normalised: a URL without scheme, a handle without @, a number in E.164."
    )
    label: str = Field(description="The platform, e.g. WeChat; may be empty.")


class AgentOut(Schema):
    code: str = Field(description="The agent's public code, e.g. HK-7KQ2MX.")
    authorised: bool = Field(description="True only while the agent is active.")
    status: str = Field(description="`active`, `suspended` or `terminated`.")
    status_label: str
    legal_name: str
    display_name: str
    region: str = Field(description="ISO 3166 country code.")
    authorised_since: datetime
    not_authorised_since: datetime | None = Field(
        description="When a suspended or terminated agent stopped being authorised."
    )
    channels: list[ChannelOut] = Field(description="The official channels leb registered.")


class VerifyOut(Schema):
    query: str = Field(description="What was searched, as leb understood it.")
    query_kind: str = Field(description="`code`, `shop_url`, `handle` or `phone`.")
    authorised: bool = Field(description="False for an unknown, suspended or terminated agent.")
    found: bool = Field(description="False when no agent has this code or channel.")
    message: str = Field(description="The outcome in the request's language.")
    agent: AgentOut | None = None


def _agent_out(agent: queries.PublicAgent) -> dict[str, Any]:
    return {
        "code": agent.code,
        "authorised": agent.authorised,
        "status": agent.status,
        "status_label": agent.status_label,
        "legal_name": agent.legal_name,
        "display_name": agent.display_name,
        "region": agent.region,
        "authorised_since": agent.authorised_since,
        "not_authorised_since": agent.not_authorised_since,
        "channels": [
            {"kind": c.kind, "kind_label": c.kind_label, "value": c.value, "label": c.label}
            for c in agent.channels
        ],
    }


def _message(agent: queries.PublicAgent | None) -> str:
    if agent is None:
        return _("Not an authorised leb agent. Do not pay this seller; report it to leb support.")
    if agent.authorised:
        return _("Authorised leb agent. Pay only through its official channels.")
    if agent.status == "terminated":
        return _("Not authorised: leb ended this agent's authorisation. Do not pay this seller.")
    return _("Not authorised: leb suspended this agent's authorisation. Do not pay this seller.")


@router.get(
    "/agents/verify",
    response={200: VerifyOut, **ERRORS},
    throttle=verify_throttle,
    summary="Is this seller an authorised agent?",
)
def verify_agent(
    request: HttpRequest,
    q: str = "",
) -> Any:
    """`q`: an agent code, shop URL, phone number or handle.
    Look a seller up by agent code (case and spaces ignored), shop address,
    phone number or social media handle. Only public fields are returned.
    Rate-limited per client address (429 with Retry-After)."""
    try:
        search = queries.parse_search(q)
    except ValidationError as exc:
        detail = " ".join(str(m) for m in exc.messages)
        code = str(exc.code or "query_invalid")
        raise Problem(
            422, code, detail, errors=[{"field": "q", "message": detail, "code": code}]
        ) from exc
    agent = queries.find_public_agent(search)
    return {
        "query": search.value,
        "query_kind": search.kind,
        "authorised": bool(agent and agent.authorised),
        "found": agent is not None,
        "message": _message(agent),
        "agent": _agent_out(agent) if agent else None,
    }


@router.get(
    "/agents",
    response={200: list[AgentOut], **ERRORS},
    throttle=list_throttle,
    summary="Authorised agents",
)
def list_agents(request: HttpRequest, region: str | None = None) -> Any:
    """Every authorised (active) agent, optionally of one region (ISO 3166
    code such as HK), by region then name."""
    wanted = (region or "").strip().upper()
    if wanted and not (len(wanted) == 2 and wanted.isalpha() and wanted.isascii()):
        message = _("A region is a two-letter ISO 3166 code, such as HK.")
        raise Problem(
            422,
            "region_invalid",
            message,
            errors=[{"field": "region", "message": message, "code": "region_invalid"}],
        )
    return [_agent_out(agent) for agent in queries.active_agents(wanted)]
