from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from leb.autokeep.actions import do_run_autokeep, do_start_method_setup
from leb.autokeep.models import AutoKeepRun

from .helpers import DECLINED_CARD

pytestmark = pytest.mark.django_db


def test_staff_see_cards_rules_and_runs_read_only(
    admin_client: Client, owner: Any, line: Any, save_card: Any, make_rule: Any
) -> None:
    # given a card, a rule, a failed run and a setup
    card = save_card(DECLINED_CARD)
    rule = make_rule(line, card)
    do_run_autokeep(line.valid_until - timedelta(days=1))
    setup, _url = do_start_method_setup(user=owner, provider="sandbox")
    run = AutoKeepRun.objects.get()
    # when staff open the back office pages
    pages = [
        reverse("admin:autokeep_savedpaymentmethod_changelist"),
        reverse("admin:autokeep_savedpaymentmethod_change", args=[card.pk]),
        reverse("admin:autokeep_autokeeprule_changelist"),
        reverse("admin:autokeep_autokeeprule_change", args=[rule.pk]),
        reverse("admin:autokeep_autokeeprun_changelist"),
        reverse("admin:autokeep_autokeeprun_change", args=[run.pk]),
        reverse("admin:autokeep_methodsetup_changelist"),
        reverse("admin:autokeep_methodsetup_change", args=[setup.pk]),
        reverse("admin:payments_sandboxvaultedcard_changelist"),
        reverse("admin:autokeep_savedpaymentmethod_changelist") + "?q=4242",
    ]
    # then they open, show no card references, and nothing can be added
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
        assert card.method_reference not in response.content.decode()
    assert admin_client.get(reverse("admin:autokeep_autokeeprule_add")).status_code == 403
