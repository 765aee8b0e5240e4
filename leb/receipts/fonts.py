"""Embedded Chinese fonts for the receipt PDF.

A PDF that only names a CJK font (the standard CID fonts) shows nothing in
readers that have no such font, so the receipt embeds its own: Noto Sans SC
for Simplified and Noto Sans TC for Traditional, each with its script's
glyph shapes. reportlab can embed TrueType outlines only, so these are the
glyf-outline variable fonts of the justmytype-intl-cjk package. Their default
instance is Thin; each receipt gets a Regular and a Bold cut, made by
subsetting the variable font to the receipt's characters and then pinning the
weight axis. That takes about a third of a second per cut and is cached by
character set, so later receipts with the same text reuse it."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from functools import lru_cache
from importlib import resources
from typing import Final

from fontTools import subset
from fontTools.ttLib import TTFont as FontFile
from fontTools.varLib import instancer
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

SIMPLIFIED: Final = "zh-hans"
TRADITIONAL: Final = "zh-hant"
REGULAR: Final = 400
BOLD: Final = 700
FILES = {
    SIMPLIFIED: ("notosanssc", "NotoSansSC[wght].ttf", "NotoSansSC"),
    TRADITIONAL: ("notosanstc", "NotoSansTC[wght].ttf", "NotoSansTC"),
}
# Always in the subset, so the cache key depends on the receipt's Chinese
# text only, not on its digits, dates and amounts.
BASE_CHARACTERS = frozenset(chr(code) for code in range(0x20, 0x7F)) | {"\u00a0", "\u2014", "·"}
# fontTools logs every table it touches at INFO: noise for each receipt.
logging.getLogger("fontTools").setLevel(logging.WARNING)
# reportlab's font registry is process-wide; registering under a name that
# depends on the subset makes concurrent receipts safe.
_register_lock = threading.Lock()


def script_of(language: str) -> str:
    return TRADITIONAL if language.lower().startswith("zh-hant") else SIMPLIFIED


def font_path(script: str) -> str:
    folder, filename, _family = FILES[script]
    base = resources.files("justmytype_intl_cjk") / "fonts" / "ofl" / folder / filename
    return str(base)


def charset_of(*texts: str) -> str:
    """The characters a set of texts needs, as a sorted string (a cache key)."""
    chars = set(BASE_CHARACTERS)
    for text in texts:
        chars.update(text)
    return "".join(sorted(chars))


def _rename(font: FontFile, name: str) -> None:
    # The instance keeps the variable font's names ("Thin"); readers and
    # reportlab tell embedded fonts apart by their PostScript name.
    table = font["name"]
    for record in list(table.names):
        if record.nameID in (3, 4, 6):
            table.setName(name, record.nameID, record.platformID, record.platEncID, record.langID)


@lru_cache(maxsize=64)
def static_font(script: str, weight: int, charset: str) -> bytes:
    """A static TrueType font of `script` at `weight` holding `charset`."""
    font = FontFile(font_path(script))
    options = subset.Options()
    # reportlab reads outlines, metrics and the cmap; hinting and OpenType
    # layout would only make the file bigger.
    options.hinting = False
    options.layout_features = []
    options.notdef_outline = True
    options.name_IDs = ["*"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={ord(char) for char in charset})
    subsetter.subset(font)
    instancer.instantiateVariableFont(font, {"wght": weight}, inplace=True, updateFontNames=False)
    _rename(font, font_name(script, weight, charset))
    buffer = io.BytesIO()
    font.save(buffer)
    return buffer.getvalue()


def font_name(script: str, weight: int, charset: str) -> str:
    family = FILES[script][2]
    style = {REGULAR: "Regular", BOLD: "Bold"}.get(weight, str(weight))
    digest = hashlib.sha256(charset.encode()).hexdigest()[:10]
    return f"{family}-{style}-{digest}"


def register(script: str, weight: int, charset: str) -> str:
    """Register the cut with reportlab once; return its font name."""
    name = font_name(script, weight, charset)
    with _register_lock:
        if name not in pdfmetrics.getRegisteredFontNames():
            data = static_font(script, weight, charset)
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(data)))
    return name
