"""The keep planner: the cheapest series of top-ups that keeps a number alive to a chosen date."""
