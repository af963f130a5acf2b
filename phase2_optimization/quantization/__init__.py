"""Phase 2, part ``quantization`` (QUANTIZATION_GUIDE.md, tasks 2.1-2.6).

Your code goes in ``starter/``. ``types.py`` (configs, results, errors) and ``hardware.py`` (what this
CPU can do) are written in full and shared by your starter and the hidden reference.
"""
