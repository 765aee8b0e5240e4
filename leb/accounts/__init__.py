"""Subscriber accounts: sign-up, sign-in, profile, time zone, and proving an email address or mobile number."""
