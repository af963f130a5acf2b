"""Phase 4, part ``edge`` (EDGE_DEPLOYMENT_GUIDE.md): planned.

Its exercises, criteria and tests are not written yet; the folders exist so that the course suite and
the grader know the part.
"""
