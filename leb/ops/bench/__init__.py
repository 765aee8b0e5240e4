"""Benchmarks behind `leb bench`.

- `fulfil`: top-up orders (create, pay, fulfil) per second, against pgbench on
  PostgreSQL or against a raw sqlite3 replay of the same statements on SQLite.
- `sweep`: the lifecycle sweep over many lines of which few are due.

This package's `__init__` and `procs` import no models, so spawned worker
processes can import them before `django.setup()`.
"""
