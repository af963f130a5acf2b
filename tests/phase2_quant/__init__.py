"""Unit tests of the Phase 2 quantization half (``phase2_optimization.<impl>.quantization``) and of the starter's shape."""
