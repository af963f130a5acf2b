"""Unit tests of part ``p2.quantization``: the reference here, your starter in the learner copy."""
