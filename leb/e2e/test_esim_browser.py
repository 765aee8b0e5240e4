"""The eSIM install state on the line page, step by step, in a browser."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from leb.provisioning import simulator
from leb.provisioning.actions import do_add_profile, do_order_profile
from leb.provisioning.tests.helpers import EID, deliver_pending

from .helpers import shot

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page: Any, live_server: Any, user: Any) -> None:
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )


def test_the_line_page_follows_the_esim_from_order_to_install(
    page_for: Any, live_server: Any, owner: Any, make_line: Any, settings: Any
) -> None:
    # given the owner's line with its eSIM ordered through the simulator
    settings.SMDP_SIMULATOR, settings.SMDP_URL = True, ""
    settings.SMDP_NOTIFICATION_SECRET = "s" * 40
    line = make_line(owner=owner)
    simulator.stock([line.iccid])
    do_add_profile(line)
    profile = do_order_profile(line, actor="test")
    page = page_for("en")
    _sign_in(page, live_server, owner)
    url = f"{live_server.url}/my/lines/{line.pk}/"
    # when the owner opens the page, then it is ready with the QR code
    page.goto(url)
    section = page.locator('section[aria-labelledby="esim-title"]')
    assert section.get_attribute("data-esim-state") == "released"
    assert page.locator(".mylines-qr svg").is_visible()
    assert f"LPA:{profile.activation_code}" in page.inner_text(".mylines-code")
    shot(page, "esim-line-released-en")
    # when the phone downloads and installs it
    from leb.provisioning.tasks import use_transport

    simulator.phone_download(profile.matching_id, eid=EID)
    simulator.phone_act("install", profile.iccid)
    with use_transport(
        lambda url, body, headers: (
            Client()
            .post(
                "/gsma/rsp2/es2plus/handleDownloadProgressInfo",
                data=body,
                content_type="application/json",
                headers={k: v for k, v in headers.items() if k != "Content-Type"},
            )
            .status_code
        )
    ):
        assert deliver_pending() == ["delivered", "delivered"]
    # then the page says installed, lists the steps, and no longer shows the code
    page.goto(url)
    assert section.get_attribute("data-esim-state") == "installed"
    assert section.locator(".is-done").count() == 3
    assert "Installed on the phone" in section.inner_text()
    assert page.locator(".mylines-qr").count() == 0
    shot(page, "esim-line-installed-en")
