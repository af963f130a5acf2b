"""Criteria of part ``p4.edge``: export (4.7), the bundle and its footprint (4.8), the live deadline and accuracy (4.9),
adaptive inference (4.10), the trade-off report (4.11)."""
