"""Health and readiness checks, Prometheus metrics, request ids and JSON logs."""
