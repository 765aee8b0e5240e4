from __future__ import annotations

import io
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

pytestmark = pytest.mark.django_db


def pdf_text(content: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def font_names(content: bytes) -> set[str]:
    names: set[str] = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        resources: Any = page["/Resources"]
        fonts = resources["/Font"]
        names |= {str(fonts[key].get_object()["/BaseFont"]) for key in fonts}
    return names


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
    assert f"https://leb.example/receipts/verify/{order.receipt_number}/" in text.replace("\n", "")


@pytest.mark.parametrize(
    "language,font",
    [("zh-hans", "/STSong-Light"), ("zh-hant", "/MSung-Light")],
)
def test_pdf_uses_the_chinese_font_of_the_script(
    owner_client: Client, order: Any, language: str, font: str
) -> None:
    # given the owner reads in one of the Chinese scripts
    owner_client.cookies["django_language"] = language

    # when they download the PDF
    response = owner_client.get(reverse("receipts:pdf", args=[order.receipt_number]))

    # then the text is set in that script's CID font
    assert response.status_code == 200
    assert any(name.startswith(font) for name in font_names(response.content))
    assert order.receipt_number in pdf_text(response.content)
