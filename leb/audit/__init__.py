"""The hash-chained audit log of every staff action and money movement, and the audited admin base."""
