"""Phone webhooks: Twilio voice (TwiML) and the USSD gateway. Thin: the
signature or the shared secret is checked, then ivr.py / ussd.py answer.

CSRF does not apply: these endpoints are called by carriers, not browsers,
and each request is authenticated by its signature or secret instead."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from leb.common import clock

from . import ivr, ussd
from .security import twilio_request_is_signed, ussd_request_is_authentic

TWIML = "application/xml; charset=utf-8"


def _forbidden() -> HttpResponse:
    return HttpResponseForbidden("forbidden", content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_POST
def voice(request: HttpRequest) -> HttpResponse:
    if not twilio_request_is_signed(request):
        return _forbidden()
    return HttpResponse(ivr.start_call(request.POST, clock.now()), content_type=TWIML)


@csrf_exempt
@require_POST
def voice_input(request: HttpRequest) -> HttpResponse:
    if not twilio_request_is_signed(request):
        return _forbidden()
    raw = request.GET.get("seq", "")
    seq = int(raw) if raw.isdigit() and len(raw) < 9 else None
    return HttpResponse(ivr.answer(request.POST, seq, clock.now()), content_type=TWIML)


@csrf_exempt
@require_POST
def voice_status(request: HttpRequest) -> HttpResponse:
    if not twilio_request_is_signed(request):
        return _forbidden()
    ivr.call_ended(request.POST)
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def ussd_view(request: HttpRequest) -> HttpResponse:
    if not ussd_request_is_authentic(request):
        return _forbidden()
    reply = ussd.reply(
        session_id=request.POST.get("sessionId", ""),
        phone_number=request.POST.get("phoneNumber", ""),
        text=request.POST.get("text", ""),
        now=clock.now(),
    )
    return HttpResponse(reply, content_type="text/plain; charset=utf-8")
