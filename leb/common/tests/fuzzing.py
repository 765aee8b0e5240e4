"""What the API fuzz tests (`pytest -m fuzz`) share: one configuration, one
way to load an OpenAPI document from the running Django app, and a check of
our own. See docs/reliability.md, "API fuzzing"."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.schemas import OpenApiSchema

# Fixed, so a run is repeatable: the same seed gives the same requests.
SEED = 14_2026
# Examples per operation in the fuzzing phase (the coverage phase adds its own
# deterministic boundary and negative cases on top). LEB_FUZZ_EXAMPLES raises
# it for a longer local run.
EXAMPLES = int(os.environ.get("LEB_FUZZ_EXAMPLES", "") or 25)

# Hypothesis settings for every fuzz test: no deadline (the first request of a
# test warms caches), no example database (nothing written to the tree, the
# run depends on the seed alone), and fixtures that are per test, not per
# example, on purpose: the data of one operation's run is built once.
FUZZ_SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def config() -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "continue-on-failure": True,
            "generation": {"mode": "all", "max-examples": EXAMPLES, "database": "none"},
            # Every built-in check (not_a_server_error, status_code_conformance,
            # content_type_conformance, response_headers_conformance,
            # response_schema_conformance, negative_data_rejection,
            # positive_data_acceptance, missing_required_header,
            # unsupported_method, ...) stays on; this only says which
            # statuses count as a refusal of well-formed input (see below).
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]
                }
            },
            # One request per example: sequences of calls are the unit tests' job.
            "phases": {"stateful": {"enabled": False}},
        }
    )


@contextmanager
def one_connection() -> Iterator[None]:
    """Keep the test's database connection (and its transaction) across the
    requests, as Django's test client does: the WSGI app otherwise closes it
    at the end of each request."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def load(path: str) -> OpenApiSchema:
    """The OpenAPI document the app serves at `path`, tested in-process."""
    from leb.wsgi import application

    return schemathesis.openapi.from_wsgi(path, application, config=config())


# Registered with schemathesis: it runs beside the built-in checks.
@schemathesis.check
def no_validation_error_for_valid_input(ctx: Any, response: Any, case: Any) -> bool | None:
    """A request that matches the published schema is never refused as
    `validation_error`: that code is the schema's own refusal, so the schema
    and the code disagree. (Schema-valid input may still be refused with a
    domain code, e.g. `line_not_found` or `plan_unknown`: which numbers and
    plans exist is data, not schema, so positive_data_acceptance accepts a
    422 above and this check keeps the schema honest.)"""
    meta = getattr(case, "meta", None)
    mode = getattr(getattr(meta, "generation", None), "mode", None)
    if mode is None or str(getattr(mode, "value", mode)) != "positive":
        return None
    if response.status_code != 422:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict) and body.get("code") == "validation_error":
        raise AssertionError(
            f"Schema-valid input refused as validation_error: {body.get('errors')}"
        )
    return True
