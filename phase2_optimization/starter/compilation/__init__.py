"""Phase 2 compilation (placeholder until its tasks land)."""
__all__: list[str] = []
