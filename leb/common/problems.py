"""RFC 9457 problem documents for every error the API returns.

Each problem has a stable `type` URI built from a code (the domain's
ValidationError code where there is one), a translated `title` per status, a
translated `detail`, and for bad input an `errors` list of
{field, message, code}. Nothing about the server's internals is ever shown.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import translation
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/problem+json"
DEFAULT_BASE_URL = "https://leb.example/problems/"
# Domain codes whose refusal is a conflict with the current state, not bad input.
CONFLICT_CODES = frozenset({"key_conflict"})


def problem_type(code: str) -> str:
    base = getattr(settings, "API_PROBLEM_BASE_URL", DEFAULT_BASE_URL) or DEFAULT_BASE_URL
    if not base.endswith("/"):
        base += "/"
    return base + code.replace("_", "-")


def title_for(status: int) -> str:
    titles = {
        400: _("Bad request"),
        401: _("Authentication required"),
        403: _("Forbidden"),
        404: _("Not found"),
        405: _("Method not allowed"),
        409: _("Conflict"),
        422: _("The request cannot be processed"),
        429: _("Too many requests"),
    }
    return titles.get(status, _("Server error") if status >= 500 else _("Request failed"))


class Problem(Exception):
    """Raised by endpoints for a failure that has its own code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: Any,
        *,
        errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


def problem_response(
    status: int,
    code: str,
    detail: Any,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title_for(status),
        "status": status,
        "detail": str(detail),
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False), status=status, content_type=CONTENT_TYPE
    )
    for name, value in (headers or {}).items():
        response[name] = value
    # The detail depends on Accept-Language; shared caches must keep them apart.
    response["Vary"] = "Accept-Language"
    response["Content-Language"] = translation.get_language() or settings.LANGUAGE_CODE
    return response


# --- Django ValidationError (QuoteError, OrderError, LineError, identifiers) ----


@contextmanager
def for_field(name: str) -> Iterator[None]:
    """Name the request field a domain ValidationError is about."""
    try:
        yield
    except DjangoValidationError as exc:
        exc.api_field = name  # type: ignore[attr-defined]
        raise


def _django_errors(exc: DjangoValidationError) -> list[dict[str, str]]:
    default_field = getattr(exc, "api_field", "")
    rows: list[dict[str, str]] = []
    if hasattr(exc, "error_dict"):
        for field, field_errors in exc.error_dict.items():
            for error in field_errors:
                rows.append(_django_row(error, "" if field == "__all__" else field))
    else:
        for error in exc.error_list:
            rows.append(_django_row(error, default_field))
    return rows


def _django_row(error: DjangoValidationError, field: str) -> dict[str, str]:
    message = error.message
    if error.params:
        message = message % error.params
    return {"field": field, "message": str(message), "code": error.code or "invalid"}


def _on_django_validation(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
    errors = _django_errors(exc)
    code = errors[0]["code"] if errors else "invalid"
    status = 409 if code in CONFLICT_CODES else 422
    detail = " ".join(row["message"] for row in errors) or _("The request is not valid.")
    return problem_response(status, code, detail, errors=errors)


# --- Request validation by the schemas ------------------------------------------

_SOURCES = {"body", "query", "path", "header", "cookie", "form", "file"}


def _field_name(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in _SOURCES:
        parts = parts[1:]
    # Body schemas are nested under the view's parameter name.
    if len(parts) > 1 and parts[0] == "payload":
        parts = parts[1:]
    return ".".join(parts)


def _pydantic_message(error: dict[str, Any]) -> str:
    kind = str(error.get("type", ""))
    if kind == "missing":
        return _("This field is required.")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number.")
    if kind in ("string_type", "string_too_long", "string_too_short"):
        return _("Enter text of a valid length.")
    if kind in ("bool_parsing", "bool_type"):
        return _("Enter true or false.")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("The request body must be a JSON object.")
    if kind == "extra_forbidden":
        return _("This field is not allowed.")
    return _("This value is not valid.")


def _on_ninja_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = [
        {
            "field": _field_name(error.get("loc", ())),
            "message": _pydantic_message(error),
            "code": str(error.get("type", "invalid")),
        }
        for error in exc.errors
    ]
    return problem_response(
        422, "validation_error", _("Some fields of the request are not valid."), errors=errors
    )


# --- Everything else --------------------------------------------------------------


def _on_problem(request: HttpRequest, exc: Problem) -> HttpResponse:
    return problem_response(
        exc.status, exc.code, exc.detail, errors=exc.errors, headers=exc.headers
    )


def _on_authentication(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return problem_response(
        401,
        "not_authenticated",
        _("Sign in, or send a valid personal token as “Authorization: Bearer leb_…”."),
        headers={"WWW-Authenticate": 'Bearer realm="leb"'},
    )


def _on_throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    wait = max(1, math.ceil(exc.wait)) if exc.wait is not None else 60
    return problem_response(
        429,
        "rate_limited",
        _("Too many requests. Try again in %(seconds)d seconds.") % {"seconds": wait},
        headers={"Retry-After": str(wait)},
    )


def _on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    status = exc.status_code
    # The framework's own messages are in English; say it in the user's language.
    details = {
        400: (_("The request could not be read: send valid JSON."), "bad_request"),
        403: (_("This request was refused."), "forbidden"),
        404: (_("Not found."), "not_found"),
        405: (_("This method is not allowed here."), "method_not_allowed"),
    }
    detail, code = details.get(status, (_("The request failed."), "http_error"))
    return problem_response(status, code, detail)


def _on_404(request: HttpRequest, exc: Http404) -> HttpResponse:
    return problem_response(404, "not_found", _("Not found."))


# Where the answers are problem documents, an address no operation has is too.
API_PREFIXES = ("/api/v1/", "/agent/v1/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: under an API prefix the APIs' own 404 problem
    (a client parsing problem+json must not get the site's HTML page), any
    other address the site's page."""
    if request.path.startswith(API_PREFIXES):
        return problem_response(404, "not_found", _("Not found."))
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def _on_exception(request: HttpRequest, exc: Exception) -> HttpResponse:
    from .transactions import database_busy

    if database_busy(exc):
        # Another transaction held the row past the lock timeout; this one
        # rolled back whole, so repeating the request is safe.
        logger.warning("database busy on %s %s: %s", request.method, request.path, exc)
        return problem_response(
            503,
            "busy",
            _("This is taking longer than it should. Nothing was changed; please try again."),
            headers={"Retry-After": "5"},
        )
    logger.exception("API error on %s %s", request.method, request.path, exc_info=exc)
    return problem_response(
        500,
        "server_error",
        _("Something went wrong on our side. Please try again later."),
    )


# --- OpenAPI -------------------------------------------------------------------

PROBLEM_SCHEMA_REF = "#/components/schemas/ProblemOut"


def problem_media_types(document: dict[str, Any]) -> dict[str, Any]:
    """Declare every response whose body is a problem document with the media
    type it is really served as, application/problem+json (django-ninja
    declares each response as application/json)."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for response in operation.get("responses", {}).values():
                content = response.get("content") or {}
                body = content.get("application/json")
                if body and body.get("schema", {}).get("$ref") == PROBLEM_SCHEMA_REF:
                    response["content"] = {CONTENT_TYPE: body}
    return document


def install(api: NinjaAPI) -> None:
    """Answer every error of `api` with a problem document, and say so in its
    OpenAPI document."""
    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (Exception, _on_exception),
        (Http404, _on_404),
        (HttpError, _on_http_error),
        (AuthenticationError, _on_authentication),
        (Throttled, _on_throttled),
        (NinjaValidationError, _on_ninja_validation),
        (DjangoValidationError, _on_django_validation),
        (Problem, _on_problem),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)

    generate = api.get_openapi_schema

    def get_openapi_schema(
        *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        document = generate(path_prefix=path_prefix, path_params=path_params)
        problem_media_types(document)
        return document

    api.get_openapi_schema = get_openapi_schema  # type: ignore[method-assign]
