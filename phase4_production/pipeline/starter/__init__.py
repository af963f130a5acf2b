"""Phase 4, part ``pipeline``: the public API the graders will call. Planned: no exercise yet."""

__all__: list[str] = []
