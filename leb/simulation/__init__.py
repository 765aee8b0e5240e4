"""A simulated subscriber base run through the real actions over months of clock time (`leb simulate`)."""
