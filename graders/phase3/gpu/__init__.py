"""Phase 3, part gpu: the overlapped input pipeline, CUDA graphs, memory under a budget, multi-device scaling,
models on CUDA streams (tasks 3.5-3.9)."""
