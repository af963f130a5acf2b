"""Phase 2, part ``compression`` (COMPRESSION_GUIDE.md, tasks 2.12-2.15).

Your code goes in ``starter/``. ``types.py`` (configs, reports, errors) is written in full and shared by
your starter and the hidden reference.
"""
