"""The receipt as a PDF, drawn with reportlab.

Chinese text uses the PDF standard CID fonts (STSong-Light for Simplified,
MSung-Light for Traditional). They ship with every PDF reader, so leb needs
no font files and the PDF stays small; the reader supplies the glyphs with
the right regional shapes."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any
from xml.sax.saxutils import escape

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import CIDEncoding, UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from leb.portal.formatting import format_local_datetime, format_money, format_phone

from . import qr
from .queries import Receipt


class TraditionalChineseFont(UnicodeCIDFont):
    """MSung-Light with the Unicode CMap of its own character collection.

    reportlab declares it with UniGB-UCS2-H, a CMap for the Simplified
    (Adobe-GB1) collection; readers that follow the spec, such as poppler,
    then show no Traditional text at all. UniCNS-UCS2-H is the Adobe-CNS1
    one. Widths come from the face, so only the declared name changes."""

    def __init__(self) -> None:
        super().__init__("MSung-Light")
        self.encodingName = "UniCNS-UCS2-H"
        self.encoding = CIDEncoding(self.encodingName)


CID_FONTS = {"zh-hans": "STSong-Light", "zh-hant": "MSung-Light"}
INK = colors.HexColor("#1d2430")
MUTED = colors.HexColor("#5a6474")
RULE = colors.HexColor("#dde2ea")
BRAND = colors.HexColor("#0b6e4f")


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    cjk: str
    word_wrap: str | None


def _cid_font(script: str) -> str:
    name = CID_FONTS[script]
    if name not in pdfmetrics.getRegisteredFontNames():
        font = TraditionalChineseFont() if script == "zh-hant" else UnicodeCIDFont(name)
        pdfmetrics.registerFont(font)
    return name


def fonts_for(language: str) -> Fonts:
    language = language.lower()
    script = "zh-hant" if language.startswith("zh-hant") else "zh-hans"
    # Latin text stays in Helvetica: readers substitute the CID fonts with
    # whatever CJK face they have, whose Latin widths rarely match the
    # declared ones, which spreads "HK$50.00" apart.
    wrap = "CJK" if language.startswith("zh") else None
    return Fonts("Helvetica", "Helvetica-Bold", _cid_font(script), wrap)


def _is_latin(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def markup(text: str, cjk_font: str) -> str:
    """Escaped paragraph markup with every non-Latin run in the CJK font."""
    parts = []
    for latin, run in itertools.groupby(text, key=_is_latin):
        chunk = escape("".join(run))
        parts.append(chunk if latin else f'<font face="{cjk_font}">{chunk}</font>')
    return "".join(parts)


class QRFlowable(Flowable):
    """The QR matrix as vector squares: sharp at any zoom or print size."""

    def __init__(self, url: str, size: float) -> None:
        super().__init__()
        self.matrix = qr.make(url).matrix
        self.size = size
        self.width = self.height = size

    def draw(self) -> None:
        quiet = 4
        modules = len(self.matrix) + 2 * quiet
        unit = self.size / modules
        canvas = self.canv
        canvas.setFillColor(colors.white)
        canvas.rect(0, 0, self.size, self.size, stroke=0, fill=1)
        canvas.setFillColor(colors.black)
        for y, row in enumerate(self.matrix):
            for x, dark in enumerate(row):
                if dark:
                    top = self.size - (y + quiet + 1) * unit
                    canvas.rect((x + quiet) * unit, top, unit, unit, stroke=0, fill=1)


def receipt_facts(receipt: Receipt, tz: tzinfo, language: str) -> list[tuple[str, str]]:
    """(label, value) rows shared by the PDF; the page renders the same facts."""
    order = receipt.order
    quote = receipt.quote
    days = quote.validity_days
    rows = [
        (_("Receipt number"), receipt.receipt_number),
        (
            _("Date"),
            format_local_datetime(order.fulfilled_at, tz, language) if order.fulfilled_at else "",
        ),
        (_("Number"), format_phone(receipt.msisdn)),
        (_("Plan"), receipt.label),
        (_("Amount"), format_money(order.price, order.currency, language)),
        (
            _("Validity added"),
            ngettext("%(days)s day", "%(days)s days", days) % {"days": days},
        ),
        (
            _("Valid until"),
            format_local_datetime(order.valid_until_after, tz, language)
            if order.valid_until_after
            else "",
        ),
        (_("Channel"), str(order.get_channel_display())),
        (_("Payment"), payment_text(order)),
    ]
    return rows


def payment_text(order: Any) -> str:
    parts = [order.payment_provider, order.payment_reference]
    return " · ".join(part for part in parts if part)


def render(receipt: Receipt, tz: tzinfo) -> bytes:
    language = translation.get_language() or "en"
    fonts = fonts_for(language)
    base = ParagraphStyle(
        "base",
        fontName=fonts.regular,
        fontSize=10.5,
        leading=15,
        textColor=INK,
        wordWrap=fonts.word_wrap,
    )
    title = ParagraphStyle("title", parent=base, fontName=fonts.bold, fontSize=20, leading=26)
    heading = ParagraphStyle(
        "heading", parent=base, fontName=fonts.bold, fontSize=12.5, leading=18, textColor=BRAND
    )
    label = ParagraphStyle("label", parent=base, textColor=MUTED)
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=MUTED)
    notice = ParagraphStyle("notice", parent=base, textColor=colors.HexColor("#8c1d18"))
    amount = ParagraphStyle("amount", parent=base, alignment=TA_RIGHT)
    strong = ParagraphStyle("strong", parent=base, fontName=fonts.bold)
    strong_amount = ParagraphStyle("strong_amount", parent=amount, fontName=fonts.bold)

    def para(text: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(markup(text, fonts.cjk), style)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=_("Top-up receipt %(number)s") % {"number": receipt.receipt_number},
        author="leb",
        subject=_("Top-up receipt"),
        lang=language,
    )
    # The frame pads its content by 6 points on each side.
    width = doc.width - 12
    story: list[Flowable] = [
        para("leb", ParagraphStyle("brand", parent=heading, fontName=fonts.bold, fontSize=16)),
        para(_("Top-up receipt"), title),
        Spacer(1, 4 * mm),
    ]
    if receipt.is_refunded:
        story += [para(_("This top-up was refunded."), notice), Spacer(1, 3 * mm)]

    facts = [[para(k, label), para(v, base)] for k, v in receipt_facts(receipt, tz, language)]
    qr_size = 42 * mm
    facts_table = Table(facts, colWidths=[34 * mm, width - 34 * mm - qr_size - 6 * mm])
    facts_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, RULE),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ]
        )
    )
    code = [
        QRFlowable(receipt.verify_url, qr_size),
        para(_("Scan to check this receipt is genuine."), small),
    ]
    top = Table([[facts_table, code]], colWidths=[width - qr_size - 6 * mm, qr_size + 6 * mm])
    top.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("LEFTPADDING", (1, 0), (1, 0), 6 * mm),
            ]
        )
    )
    story += [top, Spacer(1, 7 * mm), para(_("Breakdown"), heading)]

    currency = receipt.order.currency
    rows = [
        [
            para(row.label, strong if row.key == "price" else base),
            para(
                format_money(row.amount, currency, language),
                strong_amount if row.key == "price" else amount,
            ),
        ]
        for row in receipt.breakdown
    ]
    breakdown = Table(rows, colWidths=[width * 0.6, width * 0.4])
    breakdown.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, RULE),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    story += [
        breakdown,
        Spacer(1, 8 * mm),
        para(_("Check this receipt at:"), small),
        # A URL has no spaces to break at; let it break anywhere instead.
        para(receipt.verify_url, ParagraphStyle("url", parent=small, wordWrap="CJK")),
    ]
    doc.build(story)
    return buffer.getvalue()
