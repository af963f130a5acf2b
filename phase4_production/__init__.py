"""Phase 4 of Inference Lab: production, in three parts: ``pipeline/``, ``edge/``, ``server/``.

``pipeline/`` (an end-to-end video analysis pipeline over live streams), ``edge/`` (a torch-free bundle on one core,
with adaptive inference) and ``server/`` (a KServe v2 server and its model repository, measured against real
Triton) are graded. In each part your code goes in ``starter/``.
"""
