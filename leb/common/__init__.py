"""The shared kernel: clock, formatting, rate limits, API problem documents
and admin building blocks that every app may use and that import no app."""
