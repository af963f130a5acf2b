"""Phase 2: optimization. Quantization (QUANTIZATION_GUIDE.md, tasks 2.1-2.6) and compilation
(COMPILATION_GUIDE.md, tasks 2.7-2.11). Your code goes in ``starter/``."""
