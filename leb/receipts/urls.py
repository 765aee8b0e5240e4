from django.urls import URLPattern, URLResolver, path, register_converter

from . import views


class ReceiptNumberConverter:
    """2026-0000123: a year and a seven-digit serial."""

    regex = r"[0-9]{4}-[0-9]{7}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReceiptNumberConverter, "receipt_number")

app_name = "receipts"

urlpatterns: list[URLPattern | URLResolver] = [
    path("receipts/", views.history_view, name="history"),
    path("receipts/export.csv", views.export_csv, name="export_csv"),
    # Any text: a mistyped or forged link gets the "not genuine" page, not a bare 404.
    path(
        "receipts/verify/<str:receipt_number>/<str:signature>/",
        views.verify,
        name="verify",
    ),
    # A guest's signed link; any text, so a damaged link gets a clear page.
    path("receipts/guest/<str:token>/", views.guest_receipt, name="guest"),
    path("receipts/guest/<str:token>/receipt.pdf", views.guest_receipt_pdf, name="guest_pdf"),
    path("receipts/<receipt_number:receipt_number>/", views.receipt_detail, name="detail"),
    path("receipts/<receipt_number:receipt_number>.pdf", views.receipt_pdf, name="pdf"),
]
