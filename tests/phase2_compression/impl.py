"""The compression implementation under test, as ``c`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(2, "compression")
c, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
