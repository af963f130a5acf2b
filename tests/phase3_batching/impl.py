"""The batching implementation under test, as ``p3`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(3, "batching")
p3, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
