# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Task 4.12: a KServe v2 inference server of your own.

``app.py`` (written in full) is the HTTP side: it routes the v2 endpoints to this class, reads bodies, turns a
:class:`~phase4_production.server.protocol.ProtocolError` into the protocol's JSON error with its status, runs
``infer`` on a thread pool so the event loop keeps accepting, and answers 503 with ``Retry-After`` when too many
requests are in flight. What the server *means* is here: which model a URL names, what a request must look like
for that model, what the metadata says.

Guide: SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server
"""
from __future__ import annotations

import numpy as np

from ..model_config import v2_datatype
from ..protocol import DATATYPES, InferRequest, ProtocolError
from .repository import ServedModel

__all__ = ["InferenceServer"]


class InferenceServer:
    """The models of a repository behind the v2 protocol.

    Args:
        models: ``{name: {version: ServedModel}}``, as ``load_repository`` returns it.
        name: the server's name in ``GET /v2``.

    Attributes (helpers, read them): ``models``; ``ready`` (True once loaded; ``app.py`` sets it False while the
    server drains).
    """

    def __init__(self, models: dict[str, dict[int, ServedModel]], *, name: str = "inference-lab"):
        self.models, self.name, self.ready = models, name, True

    def server_metadata(self) -> dict:
        """``GET /v2`` (helper, written in full)."""
        return {"name": self.name, "version": "1", "extensions": ["binary_tensor_data"]}

    # -------------------------------------------------------------------------------------------------------------
    # ## Task 4.12: the model a URL names, its metadata, and what a request must look like
    # -------------------------------------------------------------------------------------------------------------
    def find_model(self, name: str, version: str | None = None) -> ServedModel:
        """The model version ``/v2/models/<name>[/versions/<version>]`` names.

        Args:
            name: the model's name.
            version: the URL's version as a string, or None (no ``/versions/...``: the highest served version).

        Raises:
            ProtocolError: 404 for an unknown model ("unknown model 'x'; served: [...]") or a version that is not
                served (name the ones that are); 400 for a version that is not a positive integer.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server
        """
        # BEGIN SOLUTION
        versions = self.models.get(name)
        if versions is None:
            raise ProtocolError(404, f"unknown model '{name}'; served: {sorted(self.models)}")
        if version is None or version == "":
            return versions[max(versions)]
        if not version.isdigit() or int(version) < 1:
            raise ProtocolError(400, f"model version must be a positive integer, got '{version}'")
        if int(version) not in versions:
            raise ProtocolError(404, f"model '{name}' has no version {version} served; served: {sorted(versions)}")
        return versions[int(version)]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Task 4.12: see SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server")
        """  # END PROMPT

    def metadata(self, name: str, version: str | None = None) -> dict:
        """``GET /v2/models/<name>[/versions/<version>]``: the model's metadata, as the protocol specifies.

        Args:
            name, version: as :meth:`find_model`.

        Returns:
            ``{"name", "versions": [served versions as strings, ascending], "platform", "inputs": [...],
            "outputs": [...]}``; each tensor ``{"name", "datatype" (v2, e.g. "FP32"), "shape"}`` where the shape
            is ``[-1] + dims`` when the model batches (``max_batch_size > 0``), else ``dims``.

        Raises:
            ProtocolError: as :meth:`find_model`.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server
        """
        # BEGIN SOLUTION
        model = self.find_model(name, version)
        cfg = model.config
        batch = [-1] if cfg.max_batch_size > 0 else []

        def tensors(specs):
            return [{"name": s.name, "datatype": v2_datatype(s.data_type), "shape": batch + list(s.dims)}
                    for s in specs]
        return {"name": name, "versions": [str(v) for v in sorted(self.models[name])],
                "platform": cfg.platform or "onnxruntime_onnx", "inputs": tensors(cfg.input),
                "outputs": tensors(cfg.output)}
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Task 4.12: see SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server")
        """  # END PROMPT

    def check_inputs(self, model: ServedModel, request: InferRequest) -> dict[str, np.ndarray]:
        """The request's tensors as the model's inputs, or the 400 that says what is wrong.

        Args:
            model: the model version the URL named (:meth:`find_model`).
            request: the parsed request (``protocol.parse_infer_request``): ``inputs`` (name, datatype, shape,
                data as a numpy array) and ``outputs`` (the outputs asked for).

        Rules (Triton's): every input of the config is given once and nothing else; each has the config's
        datatype; its shape is ``[n] + dims`` with ``1 <= n <= max_batch_size`` when the model batches (all inputs
        the same ``n``), else ``dims``; ``-1`` in ``dims`` matches any size. Every output the request asks for
        exists.

        Returns:
            ``{input name: array}`` ready for ``model.run`` (C-contiguous, the config's dtype).

        Raises:
            ProtocolError: 400, naming the input (or output) and what was expected.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server
        """
        # BEGIN SOLUTION
        cfg = model.config
        given = {i.name: i for i in request.inputs}
        expected = {s.name: s for s in cfg.input}
        unknown = sorted(set(given) - set(expected))
        if unknown:
            raise ProtocolError(400, f"model '{model.name}' has no input {unknown[0]!r}; its inputs: {sorted(expected)}")
        missing = sorted(set(expected) - set(given))
        if missing:
            raise ProtocolError(400, f"input {missing[0]!r} of model '{model.name}' is missing")
        for out in request.outputs:
            if out.name not in model.output_names:
                raise ProtocolError(400, f"model '{model.name}' has no output {out.name!r}; its outputs: "
                                    f"{model.output_names}")
        arrays, batch = {}, None
        for name, spec in expected.items():
            t = given[name]
            want = v2_datatype(spec.data_type)
            if t.datatype != want:
                raise ProtocolError(400, f"input '{name}' must be {want}, got {t.datatype}")
            shape, dims = list(t.shape), list(spec.dims)
            if cfg.max_batch_size > 0:
                if not shape or not 1 <= shape[0] <= cfg.max_batch_size:
                    raise ProtocolError(400, f"input '{name}' has shape {shape}: its first dimension is the batch, "
                                        f"1 to max_batch_size = {cfg.max_batch_size}")
                if batch is not None and shape[0] != batch:
                    raise ProtocolError(400, f"input '{name}' has batch size {shape[0]}; another input has {batch}")
                batch, rest, expect = shape[0], shape[1:], ["n"] + dims
            else:
                rest, expect = shape, dims
            if len(rest) != len(dims) or any(d != -1 and d != r for d, r in zip(dims, rest)):
                raise ProtocolError(400, f"input '{name}' has shape {shape}; model '{model.name}' expects {expect}")
            arrays[name] = np.ascontiguousarray(t.data, dtype=DATATYPES[want])
        return arrays
        # END SOLUTION
        """ # BEGIN PROMPT
        # Check names (given vs the config's), requested outputs, then per input: datatype, then shape.
        raise NotImplementedError("Task 4.12: see SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server")
        """  # END PROMPT

    def infer(self, name: str, version: str | None, request: InferRequest) -> list[tuple[str, np.ndarray, bool]]:
        """``POST .../infer``: run the model on the request; runs on a worker thread (``app.py``).

        Args:
            name, version: as :meth:`find_model`.
            request: the parsed request.

        Returns:
            ``(output name, array, binary)`` for each output asked for (all of the model's outputs, in the config's
            order, when the request names none); ``binary`` is the output's ``binary_data`` parameter, else the
            request's ``binary_data_output``.

        Raises:
            ProtocolError: 404/400 as :meth:`find_model` and :meth:`check_inputs`; 503 (``retry_after_s=1``) while
            the server is not ready.

        Guide: SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server
        """
        # BEGIN SOLUTION
        if not self.ready:
            raise ProtocolError(503, "the server is not ready (starting or draining)", retry_after_s=1.0)
        model = self.find_model(name, version)
        outputs = model.run(self.check_inputs(model, request))
        if not request.outputs:
            return [(n, outputs[n], request.binary_output) for n in model.output_names]
        return [(o.name, outputs[o.name], o.binary) for o in request.outputs]
        # END SOLUTION
        """ # BEGIN PROMPT
        raise NotImplementedError("Task 4.12: see SERVER_DEPLOYMENT_GUIDE.md#task-412-a-kserve-v2-server")
        """  # END PROMPT
