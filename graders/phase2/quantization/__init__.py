"""Criteria of part ``p2.quantization`` (tasks 2.1-2.6); thresholds in phase2_optimization/EXPECTED_OUTCOMES.md."""
