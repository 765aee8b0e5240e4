from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.test import Client, override_settings

from leb.api import tokens
from leb.api.actions import (
    authenticate_token,
    do_create_personal_token,
    do_revoke_personal_token,
)
from leb.api.models import PersonalToken


def test_token_is_shown_once_and_stored_as_hmac(owner: Any) -> None:
    # when
    token, clear = do_create_personal_token(owner, "laptop")

    # then
    scheme, prefix, secret = clear.split("_")
    assert (scheme, prefix) == ("leb", token.prefix)
    assert len(secret) == 64
    stored = PersonalToken.objects.get(pk=token.pk)
    expected = hmac.new(settings.SECRET_KEY.encode(), clear.encode(), hashlib.sha256).hexdigest()
    assert stored.token_hash == expected
    assert secret not in stored.token_hash
    assert authenticate_token(clear) == stored


def test_wrong_or_revoked_tokens_do_not_authenticate(owner: Any, outsider: Any) -> None:
    # given
    token, clear = do_create_personal_token(owner, "laptop")
    _other, other_clear = do_create_personal_token(outsider, "phone")
    # another user's secret under this prefix
    spliced = f"leb_{token.prefix}_{other_clear.split('_')[2]}"

    # when
    revoked = do_revoke_personal_token(token)

    # then
    assert authenticate_token(spliced) is None
    assert authenticate_token("leb_x_y") is None
    assert authenticate_token("") is None
    assert revoked.revoked_at is not None
    assert authenticate_token(clear) is None


def test_revoking_twice_changes_nothing(owner: Any) -> None:
    from leb.audit.models import AuditEntry

    # given
    token, _clear = do_create_personal_token(owner, "laptop")
    first = do_revoke_personal_token(token).revoked_at

    # when
    again = do_revoke_personal_token(token)

    # then
    assert again.revoked_at == first
    assert AuditEntry.objects.filter(action="api_token.revoke").count() == 1


def test_tokens_survive_a_secret_key_rotation(owner: Any) -> None:
    # given
    _token, clear = do_create_personal_token(owner, "laptop")
    old_key = settings.SECRET_KEY

    # when / then
    with override_settings(SECRET_KEY="a-new-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[old_key]):
        assert authenticate_token(clear) is not None
    with override_settings(SECRET_KEY="a-new-key-" + "x" * 40, SECRET_KEY_FALLBACKS=[]):
        assert authenticate_token(clear) is None


def test_token_format_checks() -> None:
    # given
    prefix, clear, digest = tokens.generate()

    # then
    assert tokens.split(clear) == prefix
    assert tokens.split(clear.upper()) is None
    assert tokens.split("leb_" + prefix) is None
    assert tokens.matches(clear, digest)
    assert not tokens.matches(clear + "0", digest)


def test_staff_create_a_token_in_admin_and_see_it_once(owner: Any, django_user_model: Any) -> None:
    # given
    staff = django_user_model.objects.create_superuser("boss", "boss@example.com", None)
    client = Client()
    client.force_login(staff)

    # when
    response = client.post(
        "/ops/api/personaltoken/add/", {"user": owner.pk, "name": "support"}, follow=True
    )

    # then
    assert response.status_code == 200
    token = PersonalToken.objects.get(user=owner)
    shown = [str(m) for m in response.context["messages"]]
    clear = next(m.split(": ")[-1] for m in shown if "leb_" in m)
    assert authenticate_token(clear) == token
    page = client.get(f"/ops/api/personaltoken/{token.pk}/change/").content.decode()
    assert token.token_hash in page  # shown read-only
    assert 'name="token_hash"' not in page


def test_staff_revoke_tokens_in_admin(owner: Any, django_user_model: Any) -> None:
    # given
    staff = django_user_model.objects.create_superuser("boss", "boss@example.com", None)
    client = Client()
    client.force_login(staff)
    token, clear = do_create_personal_token(owner, "laptop")

    # when
    response = client.post(
        "/ops/api/personaltoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
        follow=True,
    )

    # then
    assert response.status_code == 200
    assert authenticate_token(clear) is None


def _fields(instance: Any) -> dict[str, Any]:
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def test_a_token_comes_with_its_user_as_the_models_load_them(owner: Any) -> None:
    # given: a token used once (its last use written)
    token, clear = do_create_personal_token(owner, "laptop")
    authenticate_token(clear)

    # when
    found = authenticate_token(clear)

    # then
    assert found is not None
    stored = PersonalToken.objects.select_related("user").get(pk=token.pk)
    assert _fields(found) == _fields(stored)
    assert _fields(found.user) == _fields(stored.user)
    assert found.user.is_active is True and found.last_used_at is not None
    assert found._state.adding is False and found.user._state.adding is False


def test_a_token_of_a_deactivated_user_does_not_authenticate(owner: Any) -> None:
    # given
    _token, clear = do_create_personal_token(owner, "laptop")
    owner.is_active = False
    owner.save(update_fields=["is_active"])

    # then
    assert authenticate_token(clear) is None
