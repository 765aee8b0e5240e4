"""Plans, free-amount rules and promotions, and the one quote function every channel prices with."""
