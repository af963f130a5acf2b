"""Phase 4 of Inference Lab: production, in three parts: ``pipeline/``, ``edge/``, ``server/``.

Each part is planned: its guide says what it will teach. In each part your code will go in ``starter/``.
"""
