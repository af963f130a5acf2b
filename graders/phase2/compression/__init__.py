"""Criteria of part ``p2.compression`` (tasks 2.12-2.15); thresholds in phase2_optimization/EXPECTED_OUTCOMES.md."""
