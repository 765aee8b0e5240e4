"""Periodic jobs: the schedule, the scheduler that enqueues each job once per interval, and `leb serve`."""
