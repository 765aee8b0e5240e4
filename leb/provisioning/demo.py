"""Demo eSIMs, made through the real actions against the built-in SM-DP+
simulator: the demo subscriber's first line installed, their second ready
to download (its QR code on the line page), and stock lines reserved, held,
deleted from a phone and cancelled; the subscriber's first line is also
real-name registered. Progress notifications go through the
same recording the endpoint uses. Lines that already have a profile are left
alone, so a second load changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from stdnum.iso7064 import mod_97_10

from leb.lines.actions import do_register_real_name
from leb.lines.models import Line, LineStatus, RealNameRegistration

from . import simulator
from .actions import (
    do_add_profile,
    do_cancel_order,
    do_confirm_order,
    do_download_order,
    do_order_profile,
    do_record_progress,
)
from .models import Profile

DEMO_USERNAME = "demo"
ACTOR = "demo"


def demo_eid(n: int) -> str:
    body = f"8904903200{n:020d}"
    return body + mod_97_10.calc_check_digits(body)


def _deliver_queued() -> None:
    """Run the simulator's queued notifications through leb's recording now."""
    from django_tasks_db.models import DBTaskResult

    rows = DBTaskResult.objects.filter(
        task_path="leb.provisioning.tasks.deliver_progress", status="READY"
    ).order_by("enqueued_at", "pk")
    for row in rows:
        do_record_progress(json.loads(row.args_kwargs["args"][0]))
        row.status = "SUCCESSFUL"
        row.save(update_fields=["status"])


def load_demo_esim(now: datetime) -> int:
    """Profiles for some demo lines; returns how many were added."""
    if settings.SMDP_URL or not simulator.enabled():
        return 0
    owned = list(
        Line.objects.filter(owner__username=DEMO_USERNAME)
        .exclude(status=LineStatus.TERMINATED)
        .order_by("pk")[:2]
    )
    stock_lines = list(
        Line.objects.filter(status=LineStatus.INVENTORY, owner__isnull=True)
        .select_related("policy")
        .order_by("pk")[:4]
    )
    if owned and not RealNameRegistration.objects.filter(line=owned[0]).exists():
        # The demo subscriber's first line is registered (a made-up document).
        do_register_real_name(
            owned[0],
            full_name="Chan Tai Man",
            document_type="hkid",
            document_number="Z6837945",
            actor=ACTOR,
            now=now - timedelta(days=4),
        )
    lines = [line for line in owned + stock_lines if not Profile.objects.filter(line=line).exists()]
    if not lines:
        return 0
    simulator.stock([line.iccid for line in lines], now)
    plans = [*["installed", "released"][: len(owned)], "reserved", "held", "deleted", "cancelled"]
    for index, (line, plan) in enumerate(zip(owned + stock_lines, plans, strict=False)):
        if line not in lines:
            continue
        at = now - timedelta(days=3, hours=index)
        eid = demo_eid(index + 1)
        do_add_profile(line, now=at)
        if plan == "reserved":
            do_download_order(line.esim_profile, actor=ACTOR, now=at)
            continue
        if plan == "held":
            profile = do_download_order(line.esim_profile, actor=ACTOR, now=at)
            do_confirm_order(profile, release_flag=False, actor=ACTOR, now=at)
            continue
        profile = do_order_profile(line, actor=ACTOR, now=at)
        if plan == "cancelled":
            do_cancel_order(profile, actor=ACTOR, reason="sold by mistake", now=at)
            continue
        if plan in ("installed", "deleted"):
            simulator.phone_download(profile.matching_id, eid=eid, now=at + timedelta(minutes=5))
            simulator.phone_act("install", profile.iccid, now=at + timedelta(minutes=6))
            if plan == "deleted":
                simulator.phone_act("delete", profile.iccid, now=at + timedelta(days=1))
            _deliver_queued()
    return len(lines)
