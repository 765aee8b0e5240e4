"""The main menu folds behind a button on phones; this checks the markup and
styles that make it work without scripts (the browser test opens and closes it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

CSS = Path(__file__).resolve().parents[1] / "static" / "portal" / "portal.css"


def nav_block(html: str) -> str:
    start = html.index('<details class="nav-menu"')
    return html[start : html.index("</details>", start)]


def test_navigation_is_a_disclosure_with_a_menu_button() -> None:
    # when
    html = Client().get("/help/").content.decode()

    # then the links sit in a <details> whose <summary> is the button
    block = nav_block(html)
    assert block.count("<summary") == 1
    assert 'data-testid="nav-menu-button"' in block
    assert ">Menu</span></summary>" in block
    assert '<nav class="site-nav"' in block
    assert 'href="/help/" aria-current="page"' in block
    # closed by default, so a phone shows the button, not the long list
    assert '<details class="nav-menu" open' not in html


def test_signed_in_links_are_in_the_menu(owner_client: Client) -> None:
    block = nav_block(owner_client.get("/help/").content.decode())
    for url in ("/my/lines/", "/receipts/", "/account/"):
        assert f'href="{url}"' in block


def test_styles_fold_the_menu_only_on_narrow_screens() -> None:
    css = CSS.read_text()
    # wide screens hide the button and always show the links
    wide = re.search(r"@media \(min-width: 481px\) \{(.*?)\n  \}", css, flags=re.S)
    assert wide is not None
    assert ".nav-menu > .nav-button { display: none; }" in wide.group(1)
    assert "::details-content { content-visibility: visible" in wide.group(1)
    # the button can be reached and seen with a keyboard
    assert ".nav-button:focus-visible" in css
    assert "@media (max-width: 480px)" in css
