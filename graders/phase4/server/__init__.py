"""Criteria of part ``p4.server``: the KServe v2 protocol (4.12), the model repository and parity with real Triton
(4.13)."""
