"""Voucher PINs: batches, distributors, redemption on web, phone and USSD, with lockouts."""
