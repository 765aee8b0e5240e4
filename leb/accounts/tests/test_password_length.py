# ruff: noqa: RUF001
"""A password has at most 128 characters: a longer one is refused clearly,
in the visitor's language, and no account is made."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

LONGEST = "Kq7#" * 32  # 128 characters, not common, not numeric


def _register(password: str, language: str = "en") -> Any:
    client = Client()
    client.cookies["django_language"] = language
    data = {"identifier": "long@example.com", "password1": password, "password2": password}
    return client.post(reverse("accounts:register"), data)


def test_a_password_of_128_characters_is_taken(db: Any) -> None:
    response = _register(LONGEST)
    assert response.status_code == 302
    assert get_user_model().objects.get(email="long@example.com").check_password(LONGEST)


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "This password is too long. It must contain at most 128 characters."),
        ("zh-hans", "密码太长，最多只能包含 128 个字符。"),
        ("zh-hant", "密碼太長，最多只能包含 128 個字元。"),
    ],
)
def test_a_longer_password_is_refused_and_no_account_is_made(
    db: Any, language: str, message: str
) -> None:
    response = _register(LONGEST + "x", language)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not get_user_model().objects.filter(email="long@example.com").exists()


def test_the_rule_applies_wherever_a_password_is_chosen(db: Any) -> None:
    # the validators run for sign-up, reset, change and the back office's forms
    validate_password(LONGEST)
    with pytest.raises(ValidationError) as refused:
        validate_password(LONGEST + "x")
    assert [e.code for e in refused.value.error_list] == ["password_too_long"]
