"""Criteria of part ``p4.edge``: planned (none yet)."""
