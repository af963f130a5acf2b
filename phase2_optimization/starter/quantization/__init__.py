"""Phase 2 quantization (placeholder until its tasks land)."""
__all__: list[str] = []
