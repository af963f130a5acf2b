"""Phase 4, part ``server`` (SERVER_DEPLOYMENT_GUIDE.md, tasks 4.12-4.16): a KServe v2 inference server of your own,
a model repository in Triton's layout, worker processes with dynamic batching, Prometheus metrics and a load tool,
measured against real Triton serving the same folder.

Your code goes in ``starter/``. ``protocol.py`` (the v2 wire format, JSON and binary tensors), ``model_config.py``
(Triton's ``config.pbtxt`` read against Triton's own schema), ``app.py`` (the HTTP side, on aiohttp),
``workers.py`` (a model in a worker process), ``triton_peer.py`` (real Triton from nvidia-pytriton, ``make
triton``) and ``cli.py`` are written in full and shared by your starter and the hidden reference.
"""
