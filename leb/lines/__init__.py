"""Lines (eSIM + number), phone numbers and number policies: the validity lifecycle, the sweep and the line import."""
