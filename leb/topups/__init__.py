"""Top-up orders: create, mark paid, fulfil exactly once, fail, cancel, refund; gap-free receipt numbers."""
