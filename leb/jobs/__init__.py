"""Periodic jobs: the schedule, the scheduler that enqueues each job once per interval across all workers, and `leb worker`."""
