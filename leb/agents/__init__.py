"""Authorised agents: their prepaid float, deposits, wholesale prices, limits, the signed /agent/v1 API and the public "is this agent authorised?" check."""
