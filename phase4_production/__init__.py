"""Phase 4 of Inference Lab: production, in three parts: ``pipeline/``, ``edge/``, ``server/``.

``pipeline/`` (an end-to-end video analysis pipeline over live streams) is graded; ``edge/`` and ``server/`` are
planned: their guides say what they will teach. In each part your code goes in ``starter/``.
"""
