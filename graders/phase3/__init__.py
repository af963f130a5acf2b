"""Phase 3 criteria, one folder per part: ``batching/`` (``gpu/`` is planned)."""
