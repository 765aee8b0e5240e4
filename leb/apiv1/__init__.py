"""The /api/v1 channel: the one NinjaAPI that mounts every app's router, and
the endpoints for line checks, plans, quotes, orders, payments and receipts."""
