"""Phase 4 of Inference Lab: production, in three parts: ``pipeline/``, ``edge/``, ``server/``.

``pipeline/`` (an end-to-end video analysis pipeline over live streams) and ``edge/`` (a torch-free bundle on one
core, with adaptive inference) are graded; ``server/`` is planned: its guide says what it will teach, and its
helpers (the KServe v2 wire format, Triton's model config, real Triton as a peer) are written. In each part your
code goes in ``starter/``.
"""
