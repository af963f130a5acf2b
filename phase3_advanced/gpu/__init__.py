"""Phase 3, part ``gpu`` (GPU_OPTIMIZATION_GUIDE.md, tasks 3.5-3.9).

Your code goes in ``starter/``. ``types.py`` (the memory model, the router's config, stats and errors) and
``workers.py`` (one worker process per device) are written in full and shared by your starter and the
hidden reference.
"""
