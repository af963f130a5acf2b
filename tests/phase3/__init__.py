"""Unit tests of the Phase 3 reference solution (``phase3_advanced.reference``) and of the starter's shape."""
