"""Criteria of part ``p4.pipeline``: planned (none yet)."""
