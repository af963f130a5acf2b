"""Phase 3, part ``batching`` (DYNAMIC_BATCHING_GUIDE.md, tasks 3.1-3.4).

Your code goes in ``starter/``. ``types.py`` (configs, stats, errors) is written in full and shared by your
starter and the hidden reference.
"""
