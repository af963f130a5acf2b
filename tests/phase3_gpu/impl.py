"""The gpu part's implementation under test, as ``p3g`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(3, "gpu")
p3g, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
