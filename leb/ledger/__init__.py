"""The double-entry ledger: accounts, transfer groups, balanced postings and `leb ledger verify`."""
