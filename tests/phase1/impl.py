"""The Phase 1 implementation under test, as ``p1`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(1)
p1, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
