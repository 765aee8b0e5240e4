from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation
from pypdf import PdfReader

from leb.receipts import fonts, pdf
from leb.receipts.queries import build_receipt

pytestmark = pytest.mark.django_db

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
POPPLER = ("pdftoppm", "pdftotext", "pdffonts")


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def poppler() -> None:
    """The poppler tools render and read the PDF as a viewer would. CI must
    have them (apt: poppler-utils): a missing tool fails there, skips locally."""
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if not missing:
        return
    message = f"poppler-utils missing: {', '.join(missing)}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, check=True, timeout=60)  # noqa: S603
    return done.stdout.decode()


def embedded_fonts(path: Path) -> list[tuple[str, str]]:
    """(name, emb) per font from `pdffonts`."""
    lines = run("pdffonts", str(path)).splitlines()[2:]
    rows = []
    for line in lines:
        columns = line.split()
        # name type... encoding emb sub uni object ID: emb is 5th from the end.
        rows.append((columns[0], columns[-5]))
    return rows


def test_owner_downloads_the_pdf(owner_client: Client, order: Any) -> None:
    # given a fulfilled order
    url = reverse("receipts:pdf", args=[order.receipt_number])

    # when the owner downloads the PDF
    response = owner_client.get(url)

    # then it is a PDF of that receipt
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    text = pdf_text(response.content)
    assert order.receipt_number in text
    assert "HK$50.00" in text
    assert "Top-up receipt" in text
    assert "Test payment (sandbox)" in text
    assert "Sold by" in text
    assert f"https://leb.example/receipts/verify/{order.receipt_number}/" in text.replace("\n", "")


@pytest.mark.parametrize(
    ("language", "title", "plan"),
    [
        ("en", "Top-up receipt", "HK$50 / 180 days"),
        ("zh-hans", "充值凭证", "50港元 / 180天"),
        ("zh-hant", "增值憑證", "50港元 / 180日"),
    ],
)
def test_pdf_reads_in_every_language_with_an_embedded_font(
    owner_client: Client, order: Any, language: str, title: str, plan: str, tmp_path: Path
) -> None:
    # given the owner reads in `language`, and a viewer's tools
    poppler()
    owner_client.cookies["django_language"] = language

    # when they download the PDF
    response = owner_client.get(reverse("receipts:pdf", args=[order.receipt_number]))

    # then a viewer extracts the translated title, the plan and the amount
    assert response.status_code == 200
    path = tmp_path / f"receipt-{language}.pdf"
    path.write_bytes(response.content)
    text = run("pdftotext", "-layout", str(path), "-")
    assert title in text
    assert plan in text
    assert "HK$50.00" in text
    assert order.receipt_number in text
    # and every font that is not a standard PDF font is embedded
    rows = embedded_fonts(path)
    noto = [(name, emb) for name, emb in rows if "NotoSans" in name]
    if language.startswith("zh"):
        family = "NotoSansTC" if language == "zh-hant" else "NotoSansSC"
        assert noto and all(family in name and emb == "yes" for name, emb in noto), rows
        # (reportlab always lists Helvetica as the page's unused starting font)
        assert not any(name.endswith(("STSong-Light", "MSung-Light")) for name, _emb in rows)
    # and it renders to an image (kept for people to look at)
    ARTIFACTS.mkdir(exist_ok=True)
    run("pdftoppm", "-png", "-r", "80", "-singlefile", str(path), str(ARTIFACTS / path.stem))
    assert (ARTIFACTS / f"{path.stem}.png").stat().st_size > 10_000


def test_traditional_and_simplified_use_their_own_glyph_shapes() -> None:
    # given the same character in both scripts' fonts
    from fontTools.ttLib import TTFont

    charset = fonts.charset_of("骨")

    # when both cuts are made
    simplified = TTFont(io.BytesIO(fonts.static_font(fonts.SIMPLIFIED, fonts.REGULAR, charset)))
    traditional = TTFont(io.BytesIO(fonts.static_font(fonts.TRADITIONAL, fonts.REGULAR, charset)))

    # then the outlines differ (骨 is drawn differently in mainland and Taiwan forms)
    def outline(font: TTFont) -> Any:
        glyph = font["glyf"][font.getBestCmap()[ord("骨")]]
        return list(glyph.getCoordinates(font["glyf"])[0])

    assert outline(simplified) != outline(traditional)
    # and both are static Regular cuts, not the variable font's Thin default
    for font in (simplified, traditional):
        assert "fvar" not in font and font["OS/2"].usWeightClass == 400


def font_names(content: bytes) -> set[str]:
    names: set[str] = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        resources: Any = page["/Resources"]
        fonts_in_page = resources["/Font"]
        names |= {str(fonts_in_page[key].get_object()["/BaseFont"]) for key in fonts_in_page}
    return names


def test_receipts_with_the_same_text_share_one_font_cut(
    line: Any, make_line: Any, owner: Any, make_order: Any, now: Any
) -> None:
    # given two receipts of the same plan on two lines, with different
    # receipt numbers, phone numbers, dates and references
    from datetime import UTC, timedelta

    first = make_order(line)
    second = make_order(make_line(owner=owner), at=now + timedelta(days=3))

    # when both are rendered in Simplified Chinese
    with translation.override("zh-hans"):
        a = pdf.render(build_receipt(first), UTC)
        b = pdf.render(build_receipt(second), UTC)

    # then they use the same cached cut (the font name carries its charset)
    def cuts(content: bytes) -> set[str]:
        return {name.split("+")[-1] for name in font_names(content) if "NotoSans" in name}

    assert cuts(a) and cuts(a) == cuts(b)


def test_a_chinese_plan_name_on_an_english_receipt_still_shows(
    owner_client: Client, order: Any, hkd_plan: Any
) -> None:
    # given an English receipt whose plan name is Chinese only
    hkd_plan.name_en = "保号 50"
    hkd_plan.save(update_fields=["name_en"])

    # when the owner downloads it
    response = owner_client.get(reverse("receipts:pdf", args=[order.receipt_number]))

    # then the Chinese run is extractable, in the embedded font
    assert response.status_code == 200
    assert "保号 50" in pdf_text(response.content)
    assert b"NotoSansSC" in response.content
