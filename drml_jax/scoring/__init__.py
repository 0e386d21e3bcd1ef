"""Scores of an evaluation: on-device confusion counts and host-side metric maths."""
