"""Receipts: numbered, signed, verifiable, as page, PDF and guest link; the names of payment methods and sellers."""
