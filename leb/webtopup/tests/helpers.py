"""Helpers for the online top-up tests: walk the guest flow's redirects."""

from __future__ import annotations

from django.test import Client
from django.urls import reverse


def plans_url(client: Client, number: str) -> str:
    """Start a guest top-up for `number`; where the plans page is."""
    response = client.post(reverse("webtopup:start"), {"number": number})
    assert response.status_code == 302, response.content.decode()
    return str(response["Location"])


def confirm_url(client: Client, url: str, **data: str) -> str:
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()
    return str(response["Location"])
