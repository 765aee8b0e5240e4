"""The calendar feed (opened by calendar apps with its secret link) and the
owner's "make a new link" button."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from leb.common import clock
from leb.lines.models import Line

from .actions import do_rotate_calendar_feed
from .calendar import build_feed, line_for_token


@require_safe
def calendar_feed_view(request: HttpRequest, line_id: int, token: str) -> HttpResponse:
    line = line_for_token(line_id, token)
    if line is None:
        # A wrong, old (rotated) or other owner's link: nothing to tell apart.
        raise Http404
    response = HttpResponse(
        build_feed(line, clock.now()), content_type="text/calendar; charset=utf-8"
    )
    response["Content-Disposition"] = 'inline; filename="leb.ics"'
    response["Cache-Control"] = "private, no-cache"
    response["X-Robots-Tag"] = "noindex"
    return response


@require_POST
@login_required
def rotate_calendar_view(request: HttpRequest, line_id: int) -> HttpResponse:
    # Someone else's line is "not found", never "forbidden".
    line = get_object_or_404(Line, pk=line_id, owner=request.user)
    do_rotate_calendar_feed(line, user=request.user, now=clock.now())
    messages.success(
        request,
        _(
            "Your calendar link was replaced. Subscribe again with the new link; the old one no longer works."
        ),
    )
    return redirect("mylines:line", line_id=line.pk)
