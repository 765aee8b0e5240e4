"""The web top-up pages: number, plan, confirm, pay, result."""
