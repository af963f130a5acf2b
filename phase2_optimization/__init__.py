"""Phase 2 of Inference Lab: optimization, in three parts.

``quantization/`` (QUANTIZATION_GUIDE.md, tasks 2.1-2.6), ``compilation/`` (COMPILATION_GUIDE.md,
tasks 2.7-2.11) and ``compression/`` (COMPRESSION_GUIDE.md, tasks 2.12-2.15). In each part your code
goes in ``starter/``; ``reference/`` is the hidden solution (not in the learner copy).
"""
