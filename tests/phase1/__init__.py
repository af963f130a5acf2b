"""Unit tests of the Phase 1 reference solution (``phase1_basics.reference``) and of the starter's shape."""
