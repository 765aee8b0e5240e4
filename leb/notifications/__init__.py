"""The notification outbox: every email, SMS and webhook is a row here, delivered by a worker with retries."""
