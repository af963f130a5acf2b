"""The edge part's implementation under test, as ``p4e`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(4, "edge")
p4e, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
