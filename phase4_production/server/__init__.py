"""Phase 4, part ``server`` (SERVER_DEPLOYMENT_GUIDE.md): planned.

Its exercises, criteria and tests are not written yet. The helpers they will use are, in full:
``protocol.py`` (the KServe v2 wire format over HTTP, JSON and binary tensors), ``model_config.py`` (Triton's
``config.pbtxt`` read against Triton's own schema) and ``triton_peer.py`` (real Triton, from nvidia-pytriton, serving
a model folder on this machine: ``make triton``, then ``TritonPeer``).
"""
