"""Parsing and validation of the identifiers a subscriber types: ICCID, MSISDN, EID.

Each function normalises what people type (spaces, dashes, dots, a leading 00
for international numbers) and raises ValidationError with a translated
message for anything else.
"""

from __future__ import annotations

import re

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import luhn
from stdnum.iso7064 import mod_97_10

_SEPARATORS = re.compile(r"[\s\-.()/]+")


def _strip(value: str) -> str:
    return _SEPARATORS.sub("", str(value or "")).strip()


def normalize_iccid(value: str) -> str:
    """19 or 20 digits with a valid Luhn check digit (ITU-T E.118)."""
    digits = _strip(value)
    if not digits:
        raise ValidationError(_("Enter the ICCID printed on your card."), code="iccid_empty")
    if not digits.isdigit():
        raise ValidationError(_("An ICCID contains digits only."), code="iccid_chars")
    if not 19 <= len(digits) <= 20:
        raise ValidationError(
            _("An ICCID has 19 or 20 digits; you entered %(count)d."),
            code="iccid_length",
            params={"count": len(digits)},
        )
    if not digits.startswith("89"):
        raise ValidationError(_("An ICCID starts with 89."), code="iccid_prefix")
    if not luhn.is_valid(digits):
        raise ValidationError(
            _("This ICCID's check digit is wrong: please check for a typo."), code="iccid_check"
        )
    return digits


def normalize_msisdn(value: str, region: str | None = None) -> str:
    """A valid phone number in E.164 (+85291234567). National numbers use the
    default region (LEB_DEFAULT_REGION); 00 and + prefixes are international."""
    raw = _strip(value)
    if not raw:
        raise ValidationError(_("Enter a phone number."), code="msisdn_empty")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not re.fullmatch(r"\+?\d{3,17}", raw):
        raise ValidationError(
            _("A phone number contains digits only, optionally starting with +."),
            code="msisdn_chars",
        )
    try:
        parsed = phonenumbers.parse(raw, region or settings.DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(_("This is not a phone number."), code="msisdn_parse") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _("%(number)s is not a valid phone number."),
            code="msisdn_invalid",
            params={"number": value},
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_eid(value: str) -> str:
    """32 digits with ISO 7064 mod 97-10 check digits (GSMA SGP.29)."""
    digits = _strip(value)
    if not digits:
        raise ValidationError(_("Enter the EID."), code="eid_empty")
    if not digits.isdigit():
        raise ValidationError(_("An EID contains digits only."), code="eid_chars")
    if len(digits) != 32:
        raise ValidationError(
            _("An EID has 32 digits; you entered %(count)d."),
            code="eid_length",
            params={"count": len(digits)},
        )
    if not mod_97_10.is_valid(digits):
        raise ValidationError(
            _("This EID's check digits are wrong: please check for a typo."), code="eid_check"
        )
    return digits


def format_msisdn(e164: str) -> str:
    """International format for display: +852 9123 4567."""
    try:
        parsed = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def activation_code(
    smdp_address: str,
    matching_id: str,
    *,
    oid: str = "",
    confirmation_required: bool = False,
) -> str:
    """SGP.22 §4.1 activation code: the part after `LPA:`. The confirmation code
    itself is never part of it; only the flag saying one is required."""
    fields = (smdp_address, matching_id, oid)
    if not smdp_address or any("$" in f for f in fields):
        raise ValidationError(_("Invalid SM-DP+ address or matching ID."), code="ac_invalid")
    code = f"1${smdp_address}${matching_id}"
    if oid or confirmation_required:
        code += f"${oid}"
    if confirmation_required:
        code += "$1"
    return code
