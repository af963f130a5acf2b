"""Phase 3 criteria: dynamic batching and concurrent models, graded under load the grader generates."""
