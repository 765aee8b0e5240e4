"""Reminders before a line expires, the expiry calendar, and the urgency notice pages show."""
