"""Criteria of part ``p4.server``: planned (none yet)."""
