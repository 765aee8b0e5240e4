from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from leb.accounts.actions import do_register_user

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery 42"


@pytest.fixture
def signed_in() -> Client:
    user = do_register_user(email="me@example.com", phone="", password=PASSWORD, language="en")
    client = Client()
    client.force_login(user, backend="leb.accounts.backends.EmailOrPhoneBackend")
    return client


@pytest.mark.parametrize("name", ["accounts:login", "accounts:register"])
def test_a_signed_in_user_opening_sign_in_or_sign_up_goes_to_their_lines(
    signed_in: Client, name: str
) -> None:
    response = signed_in.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"] == reverse("mylines:list")


@pytest.mark.parametrize("name", ["accounts:login", "accounts:register"])
def test_the_redirect_honours_a_safe_next(signed_in: Client, name: str) -> None:
    response = signed_in.get(reverse(name) + "?next=/receipts/")
    assert response["Location"] == "/receipts/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_the_redirect_refuses_an_outside_next(signed_in: Client, target: str) -> None:
    response = signed_in.get(reverse("accounts:login"), {"next": target})
    assert response["Location"] == reverse("mylines:list")


def test_a_signed_in_post_to_register_creates_nothing(signed_in: Client) -> None:
    from django.contrib.auth import get_user_model

    before = get_user_model().objects.count()
    response = signed_in.post(
        reverse("accounts:register"),
        {"identifier": "second@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert get_user_model().objects.count() == before


def test_signed_out_visitors_still_see_the_pages() -> None:
    assert Client().get(reverse("accounts:login")).status_code == 200
    assert Client().get(reverse("accounts:register")).status_code == 200


def test_time_zone_picker_lists_common_zones_first_then_all(signed_in: Client) -> None:
    # when
    html = signed_in.get(reverse("accounts:account")).content.decode()

    # then two groups: the common zones in order, then every zone
    common_at = html.index('<optgroup label="Common time zones">')
    all_at = html.index('<optgroup label="All time zones">')
    assert common_at < all_at
    common = html[common_at:all_at]
    expected = [
        "Asia/Hong_Kong",
        "Asia/Shanghai",
        "Asia/Taipei",
        "Asia/Macau",
        "Asia/Singapore",
        "Europe/London",
        "Australia/Sydney",
        "America/Los_Angeles",
        "America/New_York",
        "UTC",
    ]
    positions = [common.index(f'value="{zone}"') for zone in expected]
    assert positions == sorted(positions)
    assert 'value="Pacific/Auckland"' in html[all_at:]
    assert 'value="Pacific/Auckland"' not in common
    # the account's zone (the default, Hong Kong) is selected once, in the common group
    assert html.count("selected>") == 2  # one language, one zone
    assert 'value="Asia/Hong_Kong" selected' in common


def test_a_zone_from_the_long_list_is_saved(signed_in: Client) -> None:
    response = signed_in.post(
        reverse("accounts:preferences"), {"language": "en", "time_zone": "America/Vancouver"}
    )
    assert response.status_code == 302
    assert signed_in.session["tz"] == "America/Vancouver"
    html = signed_in.get(reverse("accounts:account")).content.decode()
    assert 'value="America/Vancouver" selected' in html


@pytest.mark.parametrize(
    ("language", "zone", "message"),
    [
        ("en", "Mars/Base", "Choose a time zone from the list, for example Asia/Hong_Kong."),
        ("en", "", "Choose a time zone."),
        ("en", "asia/hong_kong", "Choose a time zone from the list, for example Asia/Hong_Kong."),
    ],
)
def test_an_invalid_zone_is_a_clear_form_error(
    signed_in: Client, language: str, zone: str, message: str
) -> None:
    # when
    response = signed_in.post(
        reverse("accounts:preferences"), {"language": language, "time_zone": zone}
    )

    # then nothing is saved and the error says what to do
    assert response.status_code == 400
    assert response.context["preferences"].errors["time_zone"] == [message]
    assert message in response.content.decode()
    assert "tz" not in signed_in.session
