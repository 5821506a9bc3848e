"""Content operations reports: how fast viewers are answered (interactions)."""
