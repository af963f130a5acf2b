"""Phase 4, part ``edge`` (EDGE_DEPLOYMENT_GUIDE.md, tasks 4.7-4.11): deploy the detector to a small device, without
torch, on one core, and keep it on time with an adaptive controller.

Your code goes in ``starter/``. ``models.py`` (the original and small classifiers, the edge clip, calibration
crops), ``protocol.py`` (the frame pipe and the bundle manifest, copied into every bundle) and ``packaging.py``
(the bundle's entry script, requirements and README) are written in full and shared by your starter and the hidden
reference.
"""
