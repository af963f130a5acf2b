"""Criteria of part ``p4.pipeline``: stages and queues (4.1), batching across streams (4.2), detection and tracking
(4.3), overload (4.4), faults and shutdown (4.5), the command line (4.6)."""
