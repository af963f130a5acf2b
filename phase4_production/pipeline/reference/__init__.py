# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 4, part ``pipeline``: the public API the graders will call. Planned: no exercise yet."""

__all__: list[str] = []
