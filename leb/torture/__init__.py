"""Concurrency and crash torture of the money paths on PostgreSQL (`leb torture race`, `leb torture crash`)."""
