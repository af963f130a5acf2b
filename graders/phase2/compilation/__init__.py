"""Criteria of part ``p2.compilation`` (tasks 2.7-2.11); thresholds in phase2_optimization/EXPECTED_OUTCOMES.md."""
