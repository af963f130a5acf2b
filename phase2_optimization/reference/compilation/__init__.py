# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 2 compilation (placeholder until its tasks land)."""
__all__: list[str] = []
