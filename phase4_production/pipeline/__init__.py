"""Phase 4, part ``pipeline`` (SYSTEM_ARCHITECTURE_GUIDE.md): planned.

Its exercises, criteria and tests are not written yet; the folders exist so that the course suite and
the grader know the part.
"""
