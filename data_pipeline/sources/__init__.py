"""Readers of AU datasets in the layouts their owners distribute."""
