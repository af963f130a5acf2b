"""Phase 2 criteria, one folder per part: ``quantization/`` and ``compilation/``."""
