"""/api/v1 endpoints of this app, mounted on the one API in leb/api/api.py.
Use leb.api.auth (ANYONE, SIGNED_IN, user_of) and leb.api.problems.Problem."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["planner"])
