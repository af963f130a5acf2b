"""The server part's implementation under test, as ``p4s`` (the reference here, your starter in the learner copy)."""
from labimpl import implementation

_impl = implementation(4, "server")
p4s, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference
