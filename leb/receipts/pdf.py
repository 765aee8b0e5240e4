"""The receipt as a PDF, drawn with reportlab.

Chinese text is set in an embedded subset of Noto Sans SC or TC (see
leb.receipts.fonts), so every reader shows it with the right regional glyph
shapes, and text extraction and search work. English receipts stay in
Helvetica and use the Chinese font only for runs Helvetica cannot show (a
Chinese plan or agent name)."""

from __future__ import annotations

import io
import itertools
from dataclasses import dataclass
from datetime import tzinfo
from xml.sax.saxutils import escape

from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from leb.common.formatting import format_money

from . import fonts, qr
from .queries import Fact, Receipt, operator_name, seller_sentence

INK = colors.HexColor("#1d2430")
MUTED = colors.HexColor("#5a6474")
RULE = colors.HexColor("#dde2ea")
BRAND = colors.HexColor("#0b6e4f")


@dataclass(frozen=True)
class Fonts:
    regular: str
    bold: str
    cjk: str | None  # the font for non-Latin runs; None when all text is in it already
    word_wrap: str | None


def fonts_for(language: str, charset: str) -> Fonts:
    """The fonts of a receipt in `language` whose text uses `charset`."""
    language = language.lower()
    script = fonts.script_of(language)
    if language.startswith("zh"):
        # One face for everything: Noto's Latin and digits match its Chinese.
        regular = fonts.register(script, fonts.REGULAR, charset)
        bold = fonts.register(script, fonts.BOLD, charset)
        return Fonts(regular, bold, None, "CJK")
    needs_cjk = any(not _is_latin(char) for char in charset)
    cjk = fonts.register(script, fonts.REGULAR, charset) if needs_cjk else None
    return Fonts("Helvetica", "Helvetica-Bold", cjk, None)


def _is_latin(char: str) -> bool:
    try:
        char.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def markup(text: str, cjk_font: str | None) -> str:
    """Escaped paragraph markup with every non-Latin run in the CJK font."""
    if cjk_font is None:
        return escape(text)
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


def render(receipt: Receipt, tz: tzinfo, *, guest: bool = False) -> bytes:
    """The receipt as PDF bytes; `guest` leaves out what only the owner sees."""
    language = translation.get_language() or "en"
    facts: list[Fact] = receipt.facts(tz, language, guest=guest)
    currency = receipt.order.currency
    amounts = [format_money(row.amount, currency, language) for row in receipt.breakdown]
    seller = operator_name()
    texts = {
        "title": _("Top-up receipt"),
        "doc_title": _("Top-up receipt %(number)s") % {"number": receipt.receipt_number},
        "refunded": _("This top-up was refunded."),
        "scan": _("Scan to check this receipt is genuine."),
        "breakdown": _("Breakdown"),
        "check_at": _("Check this receipt at:"),
    }
    agent = receipt.seller if receipt.seller is not None and receipt.seller.code else None
    if agent is not None:
        texts["agent"] = seller_sentence(agent)
        texts["agent_check"] = _("Check this agent at:")
    # The embedded font holds exactly the characters this receipt uses.
    charset = fonts.charset_of(
        seller,
        receipt.verify_url,
        agent.check_url if agent else "",
        *texts.values(),
        *(f.label + f.value for f in facts),
        *(row.label for row in receipt.breakdown),
        *amounts,
    )
    face = fonts_for(language, charset)
    base = ParagraphStyle(
        "base",
        fontName=face.regular,
        fontSize=10.5,
        leading=15,
        textColor=INK,
        wordWrap=face.word_wrap,
    )
    title = ParagraphStyle("title", parent=base, fontName=face.bold, fontSize=20, leading=26)
    heading = ParagraphStyle(
        "heading", parent=base, fontName=face.bold, fontSize=12.5, leading=18, textColor=BRAND
    )
    label = ParagraphStyle("label", parent=base, textColor=MUTED)
    small = ParagraphStyle("small", parent=base, fontSize=8.5, leading=12, textColor=MUTED)
    notice = ParagraphStyle("notice", parent=base, textColor=colors.HexColor("#8c1d18"))
    amount = ParagraphStyle("amount", parent=base, alignment=TA_RIGHT)
    strong = ParagraphStyle("strong", parent=base, fontName=face.bold)
    strong_amount = ParagraphStyle("strong_amount", parent=amount, fontName=face.bold)

    def para(text: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(markup(text, face.cjk), style)

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=texts["doc_title"],
        author=seller,
        subject=texts["title"],
        lang=language,
    )
    # The frame pads its content by 6 points on each side.
    width = doc.width - 12
    story: list[Flowable] = [
        para(seller, ParagraphStyle("brand", parent=heading, fontName=face.bold, fontSize=16)),
        para(texts["title"], title),
        Spacer(1, 4 * mm),
    ]
    if receipt.is_refunded:
        story += [para(texts["refunded"], notice), Spacer(1, 3 * mm)]

    rows = [[para(fact.label, label), para(fact.value, base)] for fact in facts]
    qr_size = 42 * mm
    facts_table = Table(rows, colWidths=[34 * mm, width - 34 * mm - qr_size - 6 * mm])
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
    code = [QRFlowable(receipt.verify_url, qr_size), para(texts["scan"], small)]
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
    story += [top, Spacer(1, 7 * mm), para(texts["breakdown"], heading)]

    lines = [
        [
            para(row.label, strong if row.key == "price" else base),
            para(money, strong_amount if row.key == "price" else amount),
        ]
        for row, money in zip(receipt.breakdown, amounts, strict=True)
    ]
    breakdown = Table(lines, colWidths=[width * 0.6, width * 0.4])
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
        para(texts["check_at"], small),
        # A URL has no spaces to break at; let it break anywhere instead.
        para(receipt.verify_url, ParagraphStyle("url", parent=small, wordWrap="CJK")),
    ]
    if agent is not None:
        story += [
            Spacer(1, 4 * mm),
            para(texts["agent"], base),
            para(texts["agent_check"], small),
            para(agent.check_url, ParagraphStyle("agent_url", parent=small, wordWrap="CJK")),
        ]
    doc.build(story)
    return buffer.getvalue()
