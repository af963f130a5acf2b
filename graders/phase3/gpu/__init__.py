"""Criteria of part ``p3.gpu``: planned (none yet)."""
