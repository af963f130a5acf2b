"""The compilation implementation under test, as ``p2c`` (the reference here, your starter in the learner copy)."""
import pytest
from labimpl import implementation

_impl = implementation(2, "compilation")
p2c, IMPL, HAS_REFERENCE, needs_reference = _impl.module, _impl.impl, _impl.has_reference, _impl.needs_reference

_TRT_OK, _TRT_REASON = p2c.tensorrt_available()
#: TensorRT tests (with ``@pytest.mark.gpu``): an NVIDIA GPU and the tensorrt package (the gpu extra).
needs_trt = pytest.mark.skipif(not _TRT_OK, reason=_TRT_REASON)
