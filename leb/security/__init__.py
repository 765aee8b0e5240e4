"""Lockouts after repeated wrong secrets (PINs, codes, passwords), per line, caller, account and address."""
