"""Phase 3: advanced serving. Dynamic batching and concurrent models (DYNAMIC_BATCHING_GUIDE.md). Your code goes in ``starter/``."""
