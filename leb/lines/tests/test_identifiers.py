from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.functional import Promise
from stdnum import luhn

from leb.lines.identifiers import (
    activation_code,
    normalize_eid,
    normalize_iccid,
    normalize_msisdn,
)

# VECTORS.md: ITU-T E.118 Luhn, GSMA SGP.29 EID, SGP.22 §4.1 activation code.
ICCID_VECTOR = "8985200000000000002"
EID_VECTOR = "89049032123451234512345678901235"
AC_VECTOR = "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815$1.3.6.1.4.1.31746$1"


def error_code(func: Callable[..., object], *args: object, **kwargs: object) -> str | None:
    with pytest.raises(ValidationError) as info:
        func(*args, **kwargs)
    return info.value.code


# --- ICCID ---------------------------------------------------------------------


def test_iccid_vector_is_valid():
    # given
    body = "898520000000000000"

    # when
    result = normalize_iccid(ICCID_VECTOR)

    # then
    assert result == ICCID_VECTOR
    assert body + luhn.calc_check_digit(body) == ICCID_VECTOR


def test_twenty_digit_iccid_is_valid():
    # given
    body = "8985200000000000001"
    iccid = body + luhn.calc_check_digit(body)

    # when
    result = normalize_iccid(iccid)

    # then
    assert result == iccid
    assert len(result) == 20


def test_iccid_spaces_and_dashes_are_removed():
    # given
    typed = " 8985 2000-0000 0000 002 "

    # when
    result = normalize_iccid(typed)

    # then
    assert result == ICCID_VECTOR


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("8985200000000000003", "iccid_check"),  # vector with the last digit changed
        ("8985200000000000020", "iccid_check"),  # two digits swapped
        ("898520000000000000", "iccid_length"),  # 18 digits
        ("898520000000000000000", "iccid_length"),  # 21 digits
        ("89852000000000000A2", "iccid_chars"),
        ("ICCID8985200000000000002", "iccid_chars"),
        ("", "iccid_empty"),
        ("   ", "iccid_empty"),
        ("1985200000000000009", "iccid_prefix"),  # valid Luhn, not a telecom ICCID
    ],
)
def test_bad_iccid_is_rejected_with_its_code(value, code):
    # given / when
    result = error_code(normalize_iccid, value)

    # then
    assert result == code


def test_iccid_length_message_names_the_count():
    # given
    value = "898520000000000000"

    # when
    with pytest.raises(ValidationError) as info:
        normalize_iccid(value)

    # then
    assert info.value.messages == ["An ICCID has 19 or 20 digits; you entered 18."]


# --- EID -----------------------------------------------------------------------


def test_eid_vector_is_valid():
    # given / when
    result = normalize_eid("8904 9032 1234 5123 4512 3456 7890 1235")

    # then
    assert result == EID_VECTOR


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("89049032123451234512345678901234", "eid_check"),
        ("89049032123451234512345678901253", "eid_check"),  # check digits swapped
        ("8904903212345123451234567890123", "eid_length"),  # 31 digits
        ("890490321234512345123456789012350", "eid_length"),  # 33 digits
        ("8904903212345123451234567890123A", "eid_chars"),
    ],
)
def test_bad_eid_is_rejected_with_its_code(value, code):
    # given / when
    result = error_code(normalize_eid, value)

    # then
    assert result == code


def test_empty_eid_is_rejected_as_empty():
    # given / when
    result = error_code(normalize_eid, "")

    # then
    assert result == "eid_empty"


def test_empty_eid_is_rejected():
    # given / when / then
    with pytest.raises(ValidationError):
        normalize_eid("")


# --- MSISDN --------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "+85291234567",
        "+852 9123 4567",
        "+852-9123-4567",
        "00852 9123 4567",
        "0085291234567",
        "(+852) 9123.4567",
        "9123 4567",  # national, default region HK
        "9123-4567",
    ],
)
def test_msisdn_is_normalised_to_e164(typed):
    # given / when
    result = normalize_msisdn(typed)

    # then
    assert result == "+85291234567"


def test_default_region_is_hong_kong():
    # given
    from django.conf import settings

    # when
    result = normalize_msisdn("6123 4567")

    # then
    assert settings.DEFAULT_REGION == "HK"
    assert result == "+85261234567"


def test_national_number_follows_default_region_setting(settings):
    # given
    settings.DEFAULT_REGION = "GB"

    # when
    uk = normalize_msisdn("07400 123456")
    hk = normalize_msisdn("+852 9123 4567")

    # then
    assert uk == "+447400123456"
    assert hk == "+85291234567"


def test_explicit_region_wins_over_default():
    # given / when
    result = normalize_msisdn("07400 123456", region="GB")

    # then
    assert result == "+447400123456"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("", "msisdn_empty"),
        ("  ", "msisdn_empty"),
        ("9123 45a7", "msisdn_chars"),
        ("+852+91234567", "msisdn_chars"),
        ("12", "msisdn_chars"),
        ("1234", "msisdn_invalid"),
        ("+852 1234 5678", "msisdn_invalid"),  # HK numbers do not start with 1
        ("+999 123456", "msisdn_parse"),  # no such country code
    ],
)
def test_bad_msisdn_is_rejected_with_its_code(value, code):
    # given / when
    result = error_code(normalize_msisdn, value)

    # then
    assert result == code


# --- Activation code -----------------------------------------------------------


def test_activation_code_vector():
    # given
    smdp, matching_id, oid = "SMDP.GSMA.COM", "04386-AGYFT-A74Y8-3F815", "1.3.6.1.4.1.31746"

    # when
    result = activation_code(smdp, matching_id, oid=oid, confirmation_required=True)

    # then
    assert result == AC_VECTOR
    assert "LPA:" not in result


def test_activation_code_without_optional_fields():
    # given / when
    result = activation_code("SMDP.GSMA.COM", "04386-AGYFT-A74Y8-3F815")

    # then
    assert result == "1$SMDP.GSMA.COM$04386-AGYFT-A74Y8-3F815"


def test_activation_code_confirmation_without_oid_keeps_an_empty_oid_field():
    # given / when
    result = activation_code("SMDP.GSMA.COM", "ABC", confirmation_required=True)

    # then
    assert result == "1$SMDP.GSMA.COM$ABC$$1"


@pytest.mark.parametrize(
    ("smdp", "matching_id", "oid"),
    [
        ("SMDP$GSMA.COM", "ABC", ""),
        ("SMDP.GSMA.COM", "AB$C", ""),
        ("SMDP.GSMA.COM", "ABC", "1.3$6"),
        ("", "ABC", ""),
    ],
)
def test_activation_code_rejects_dollar_and_empty_address(smdp, matching_id, oid):
    # given / when
    result = error_code(activation_code, smdp, matching_id, oid=oid)

    # then
    assert result == "ac_invalid"


# --- Messages ------------------------------------------------------------------


def test_error_message_is_translated_when_rendered():
    # given
    with pytest.raises(ValidationError) as info:
        normalize_iccid("8985200000000000003")
    message = info.value.message

    # when
    with translation.override("en"):
        english = str(message)
    with translation.override("zh-hans"):
        chinese = str(message)

    # then: lazy, so each reader gets it in the language active when shown
    assert isinstance(message, Promise)
    assert english == "This ICCID's check digit is wrong: please check for a typo."
    assert isinstance(chinese, str)
    assert chinese


def test_error_params_are_filled_in_the_active_language():
    # given
    with pytest.raises(ValidationError) as info:
        normalize_msisdn("1234")

    # when
    with translation.override("zh-hant"):
        messages = info.value.messages

    # then
    assert len(messages) == 1
    assert "1234" in messages[0]
    assert "%(number)s" not in messages[0]
