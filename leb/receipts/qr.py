"""The verification QR code, as inline SVG for pages and as a matrix for PDFs."""

from __future__ import annotations

import segno
from django.utils.safestring import SafeString, mark_safe


def make(url: str) -> segno.QRCode:
    # Level M survives a crease or a smudge on a printed receipt.
    return segno.make(url, error="m", micro=False)


def svg(url: str, title: str) -> SafeString:
    code = make(url)
    # segno escapes the title; the markup has no style attributes, so the
    # strict CSP allows it inline.
    markup = code.svg_inline(scale=4, omitsize=True, title=title, light="#fff", border=4)
    return mark_safe(markup)  # noqa: S308
