"""leb: prepaid eSIM number-keeping lines."""

__version__ = "0.1.0"
