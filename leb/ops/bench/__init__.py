"""Benchmarks behind `leb bench`.

- `fulfil`: top-up orders (create, pay, fulfil) per second, against pgbench on
  PostgreSQL or against a raw sqlite3 replay of the same statements on SQLite.
- `sweep`: the lifecycle sweep over many lines of which few are due.
- `reminders`, `agents`: the reminder scan; agent sales on one float.
- `web` (`leb bench http`): the quick check and a whole API top-up, in
  process; `loadgen` runs them through gunicorn as the HTTP `scenarios`,
  `cpu` reads what each process group spent.

This package's `__init__`, `procs`, `loadgen`, `scenarios` and `cpu` import
no models, so spawned worker processes can import them before
`django.setup()`.
"""
