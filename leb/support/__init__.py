"""Support tickets from subscribers and guests, staff replies, and fraud reports about sellers."""
