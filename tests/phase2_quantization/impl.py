"""The quantization implementation under test, as ``q`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(2, "quantization")
q, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
