"""The "my lines" pages: binding a line to an account and seeing its validity, balance and history."""
