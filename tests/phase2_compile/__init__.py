"""Unit tests of the Phase 2 compilation half (tasks 2.7-2.11): the reference in the course repo, the starter in the learner copy."""
