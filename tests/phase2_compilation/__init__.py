"""Unit tests of part ``p2.compilation``: the reference here, your starter in the learner copy."""
