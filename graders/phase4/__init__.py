"""Phase 4 criteria, one folder per part: ``pipeline/``, ``edge/``, ``server/`` (all planned)."""
