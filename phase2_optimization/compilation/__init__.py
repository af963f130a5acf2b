"""Phase 2, part ``compilation`` (COMPILATION_GUIDE.md, tasks 2.7-2.11).

Your code goes in ``starter/``. ``types.py`` (configs and results) is written in full and shared by your
starter and the hidden reference.
"""
