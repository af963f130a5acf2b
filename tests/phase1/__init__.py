"""Unit tests of Phase 1 (``phase1_basics``): the reference here, your starter in the learner copy."""
