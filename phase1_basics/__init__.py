"""Phase 1 of Inference Lab: measure before you optimise.

The learner fills in ``phase1_basics.starter``; ``phase1_basics.reference`` is the hidden reference
solution (excluded from the learner release). Read ``IMPLEMENTATION_GUIDE.md`` first.
"""
