"""Phase 3 of Inference Lab: advanced serving, in parts.

``batching/`` (DYNAMIC_BATCHING_GUIDE.md, tasks 3.1-3.4): dynamic batching, robustness, concurrent models,
a load generator; ``gpu/`` (GPU_OPTIMIZATION_GUIDE.md) is planned. In each part your code goes in
``starter/``; ``reference/`` is the hidden solution (not in the learner copy).
"""
