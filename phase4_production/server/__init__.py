"""Phase 4, part ``server`` (SERVER_DEPLOYMENT_GUIDE.md, tasks 4.12-4.13): a KServe v2 inference server of your own
and a model repository in Triton's layout, measured against real Triton serving the same folder.

Your code goes in ``starter/``. ``protocol.py`` (the v2 wire format, JSON and binary tensors), ``model_config.py``
(Triton's ``config.pbtxt`` read against Triton's own schema), ``app.py`` (the HTTP side, on aiohttp),
``triton_peer.py`` (real Triton from nvidia-pytriton, ``make triton``) and ``cli.py`` are written in full and
shared by your starter and the hidden reference.
"""
