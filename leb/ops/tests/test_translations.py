"""Every user-facing string has a Simplified and a Traditional Chinese
translation, and the compiled catalogs match the sources."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import extract_python
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.utils.translation.template import templatize

# The catalogs touch no database.
pytestmark = pytest.mark.own_database

ROOT = Path(__file__).resolve().parents[2]
LOCALES = ["zh_Hans", "zh_Hant"]
KEYWORDS = {
    "_": None,
    # modules that already use _ for gettext_lazy import gettext as _t
    "_t": None,
    "gettext": None,
    "gettext_lazy": None,
    "ngettext": (1, 2),
    "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2),
    "pgettext_lazy": ((1, "c"), 2),
}


def _extract(source: bytes) -> set[str]:
    found: set[str] = set()
    for _lineno, _func, message, _comments in extract_python(BytesIO(source), KEYWORDS, [], {}):
        parts = message if isinstance(message, tuple) else (message,)
        found.update(str(m) for m in parts if m)
    return found


def source_messages() -> set[str]:
    """What `makemessages` would extract: Python sources and Django templates."""
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        if "migrations" not in path.parts and "tests" not in path.parts:
            found |= _extract(path.read_bytes())
    templates = [*ROOT.rglob("templates/**/*.html"), *ROOT.rglob("templates/**/*.txt")]
    for path in templates:
        code = templatize(path.read_text(encoding="utf-8"), origin=str(path))
        # templatize keeps the template's indentation, which is not valid Python;
        # only the gettext calls matter, so drop it.
        found |= _extract("\n".join(line.lstrip() for line in code.splitlines()).encode())
    return found


def _key(value: object) -> object:
    return tuple(value) if isinstance(value, (tuple, list)) else value


@pytest.fixture(scope="module")
def messages() -> set[str]:
    return source_messages()


@pytest.mark.parametrize("locale", LOCALES)
def test_every_message_is_translated(locale: str, messages: set[str]) -> None:
    po_path = ROOT / "locale" / locale / "LC_MESSAGES" / "django.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    translated: set[str] = set()
    for m in catalog:
        strings = m.string if isinstance(m.string, (tuple, list)) else (m.string,)
        if m.id and not m.fuzzy and strings and all(strings):
            translated.update(m.id if isinstance(m.id, (tuple, list)) else (m.id,))
    missing = sorted(messages - translated)
    assert not missing, f"{locale}: {len(missing)} untranslated, e.g. {missing[:10]}"


@pytest.mark.parametrize("locale", LOCALES)
def test_compiled_catalog_matches_source(locale: str) -> None:
    folder = ROOT / "locale" / locale / "LC_MESSAGES"
    with (folder / "django.po").open("rb") as fh:
        po = {_key(m.id): _key(m.string) for m in read_po(fh) if m.id and m.string and not m.fuzzy}
    with (folder / "django.mo").open("rb") as fh:
        mo = {_key(m.id): _key(m.string) for m in read_mo(fh) if m.id}
    assert po == mo, "run `leb compilemessages` after editing the .po files"


def test_a_message_really_switches_language() -> None:
    from django.utils import translation

    from leb.lines.identifiers import normalize_iccid

    with translation.override("zh-hans"):
        try:
            normalize_iccid("12")
        except Exception as exc:
            zh = " ".join(exc.messages)  # type: ignore[attr-defined]
    with translation.override("en"):
        try:
            normalize_iccid("12")
        except Exception as exc:
            en = " ".join(exc.messages)  # type: ignore[attr-defined]
    assert zh != en


# Words that read the same in every language: codes, acronyms, brand names.
SAME_IN_EVERY_LANGUAGE = {
    "API",
    "SMS",
    "ICCID",
    "MSISDN",
    "EID",
    "TOTP",
    "PIN",
    "URL",
    "ID",
    "IP",
    "CSV",
    "PDF",
    "PayPal",
    "Stripe",
    "Twilio",
    "USSD",
    "IVR",
    "leb",
    "HMAC",
    "JSON",
    "Email",
    "email",
}


def _untranslated(label: object, language: str) -> bool:
    from django.utils import translation

    with translation.override("en"):
        english = str(label)
    with translation.override(language):
        local = str(label)
    return bool(english.strip()) and english == local and english not in SAME_IN_EVERY_LANGUAGE


@pytest.mark.parametrize("language", ["zh-hans", "zh-hant"])
def test_every_model_field_and_choice_label_is_translated(language: str) -> None:
    """What the back office and the portal show from the models: app, model
    and field names and every choice (statuses, channels, providers, kinds).
    A label that is not wrapped in gettext, or not translated, shows English
    to a Chinese reader."""
    from django.apps import apps

    missing: list[str] = []
    for config in apps.get_app_configs():
        if not config.name.startswith("leb."):
            continue
        if _untranslated(config.verbose_name, language):
            missing.append(f"app {config.label}: {config.verbose_name}")
        for model in config.get_models():
            meta = model._meta
            for label in (meta.verbose_name, meta.verbose_name_plural):
                if _untranslated(label, language):
                    missing.append(f"{meta.label}: {label}")
            for field in meta.get_fields(include_hidden=False):
                name = getattr(field, "verbose_name", None)
                named = name is not None and getattr(field, "auto_created", False) is False
                if named and _untranslated(name, language):
                    missing.append(f"{meta.label}.{field.name}: {name}")
                for _value, choice in getattr(field, "flatchoices", None) or []:
                    if _untranslated(choice, language):
                        missing.append(f"{meta.label}.{field.name} choice: {choice}")
    assert not missing, f"{language}: {len(missing)} untranslated labels, e.g. {missing[:15]}"


@pytest.mark.parametrize("locale", LOCALES)
def test_one_register_the_polite_you(locale: str) -> None:
    """Both Chinese catalogs address the subscriber as 您 throughout."""
    po_path = ROOT / "locale" / locale / "LC_MESSAGES" / "django.po"
    with po_path.open("rb") as fh:
        catalog = read_po(fh)
    informal = []
    for m in catalog:
        strings = m.string if isinstance(m.string, (tuple, list)) else (m.string,)
        if any("你" in s for s in strings if s):
            informal.append(m.id)
    assert not informal, f"{locale}: 你 instead of 您 in {informal[:10]}"
