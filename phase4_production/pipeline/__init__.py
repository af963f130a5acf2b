"""Phase 4, part ``pipeline`` (SYSTEM_ARCHITECTURE_GUIDE.md, tasks 4.1-4.6): a video analysis pipeline over many
live streams.

Your code goes in ``starter/``. ``types.py`` (configuration, results, reports, errors), ``sources.py`` (video files
and in-memory frames, released at a camera's rate), ``detector.py`` (the detector's two halves), ``state.py`` (a
run's bookkeeping, which your ``Pipeline`` inherits), ``plots.py`` and ``cli.py`` (``python -m
phase4_production.pipeline run ...``) are written in full and shared by your starter and the hidden reference.
"""
