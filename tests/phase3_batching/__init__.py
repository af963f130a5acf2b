"""Unit tests of part ``p3.batching``: the reference here, your starter in the learner copy."""
