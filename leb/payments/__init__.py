"""Payment providers (sandbox, Stripe, PayPal): attempts, webhooks, return pages and settlement of paid orders."""
