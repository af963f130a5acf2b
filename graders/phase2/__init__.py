"""Phase 2 criteria: quantization (test_quant_*.py) and compilation (test_compile_*.py)."""
