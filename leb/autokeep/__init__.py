"""Auto-keep: a saved payment method that tops a line up before it expires, on rules the subscriber sets."""
