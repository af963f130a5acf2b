"""The server part's command line (helper, written in full): ``python -m phase4_production.server ...``.

- ``repository --out model_repository``: your ``build_repository`` (the digit classifier, Triton's layout), then
  the folder loaded the way your server loads it.
- ``serve --repository model_repository [--port 8000] [--workers]``: your ``load_repository`` + ``InferenceServer``
  (with ``--workers``: your ``ScaledServer``, worker processes as each ``instance_group`` says) behind
  ``app.make_app`` on 127.0.0.1 until Ctrl-C or SIGTERM, which drain it (``docker stop`` sends SIGTERM); try
  ``curl localhost:8000/v2/models/digits``.
- ``triton --model model_repository/digits``: real Triton (``make triton`` first) serving the same folder, until
  Ctrl-C.
- ``load --url 127.0.0.1:8000 --streams 100 --duration 10``: your ``run_load`` (Task 4.16) against either server,
  then your ``summarize_load`` and ``availability_timeline``; ``--json FILE`` writes the report and every record.

``--impl starter`` or ``reference`` (default here: the reference where this copy has one, else your starter).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
import threading
from pathlib import Path

__all__ = ["main", "build_parser"]

_HERE = Path(__file__).resolve().parent


def _default_impl() -> str:
    return "reference" if (_HERE / "reference").is_dir() else "starter"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m phase4_production.server", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("repository", help="write the model repository (Triton's layout)")
    r.add_argument("--out", type=Path, default=Path("model_repository"))
    s = sub.add_parser("serve", help="serve a model repository with your server")
    s.add_argument("--repository", type=Path, default=Path("model_repository"))
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--threads", type=int, default=2, help="inference threads")
    s.add_argument("--workers", action="store_true",
                   help="serve with worker processes and dynamic batching (Task 4.14's ScaledServer)")
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (0.0.0.0 in a container)")
    s.add_argument("--metrics", action="store_true",
                   help="with --workers: Prometheus metrics at /metrics and a JSON access log on stderr (Task 4.15)")
    t = sub.add_parser("triton", help="serve one model folder with real Triton (make triton first)")
    t.add_argument("--model", type=Path, default=Path("model_repository/digits"))
    ld = sub.add_parser("load", help="drive a v2 server with your load tool (Task 4.16)")
    ld.add_argument("--url", default="127.0.0.1:8000", help="host:port of your server or real Triton")
    ld.add_argument("--model", default="digits")
    ld.add_argument("--streams", type=int, default=100, help="concurrent streams (requests in flight)")
    ld.add_argument("--duration", type=float, default=10.0, help="measured seconds, after the warm-up")
    ld.add_argument("--warmup", type=float, default=1.0, help="seconds of load not measured")
    ld.add_argument("--rows", type=int, default=4, help="frames per request")
    ld.add_argument("--timeout", type=float, default=10.0, help="seconds before a request counts as lost")
    ld.add_argument("--window", type=float, default=1.0, help="seconds per point of the availability timeline")
    ld.add_argument("--json", type=Path, default=None, help="write the report and the records here")
    for p in (r, s, ld):
        p.add_argument("--impl", choices=("starter", "reference"), default=None,
                       help=f"whose code to run (default here: {_default_impl()})")
    return parser


def _wait_for_ctrl_c() -> None:
    """Return on Ctrl-C or SIGTERM (what ``docker stop`` and Kubernetes send before they kill)."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 on success, 1 when your code failed (the message says why), 2 on bad usage."""
    args = build_parser().parse_args(argv)
    if args.command == "triton":
        from .triton_peer import PeerError, TritonPeer

        try:
            with TritonPeer(args.model) as peer:
                print(f"real Triton serves {args.model}: http://{peer.http_url}/v2, gRPC {peer.grpc_url}, "
                      f"metrics {peer.metrics_url} (Ctrl-C stops it)", flush=True)
                _wait_for_ctrl_c()
        except PeerError as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    impl = args.impl or _default_impl()
    try:
        mod = importlib.import_module(f"phase4_production.server.{impl}")
    except ModuleNotFoundError as e:
        print(f"cannot import the {impl} implementation: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "load":
            return _load(mod, args)
        if args.command == "repository":
            folder = Path(mod.build_repository(args.out))
            models = mod.load_repository(folder.parent)
            for name, versions in models.items():
                print(f"{name}: versions {sorted(versions)} in {folder.parent / name}")
            return 0
        from .app import ServerThread

        if args.metrics and not args.workers:
            print("--metrics needs --workers (the pools report their batches to it)", file=sys.stderr)
            return 2
        models = mod.load_repository(args.repository)
        if args.metrics:
            access = logging.getLogger("inference_lab.access")
            access.setLevel(logging.INFO)
            out = logging.StreamHandler()  # stderr: one JSON object per line, for a log collector
            out.setFormatter(logging.Formatter("%(message)s"))
            access.addHandler(out)
            access.propagate = False
        metrics = mod.ServerMetrics() if args.metrics else None
        server = mod.ScaledServer(models, metrics=metrics).start() if args.workers else mod.InferenceServer(models)
        try:
            with ServerThread(server, host=args.host, port=args.port, threads=args.threads) as running:
                extra = f", worker processes {server.worker_pids()}" if args.workers else ""
                extra += f", metrics {running.base}/metrics" if args.metrics else ""
                print(f"serving {sorted(server.models)} on {running.base}/v2{extra} (Ctrl-C or SIGTERM drains and "
                      "stops it)", flush=True)
                _wait_for_ctrl_c()
        finally:
            if args.workers:
                server.close(drain=True)
        print("drained and stopped", flush=True)
        return 0
    except NotImplementedError as e:
        print(f"not implemented yet: {e}", file=sys.stderr)
        return 1
    except (ValueError, RuntimeError) as e:  # RepositoryError, ConfigError, a port in use
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        return 1


def _load(mod, args) -> int:
    """``load``: the digit classifier's input shape, random frames, your tool, its report."""
    import dataclasses
    import json

    import numpy as np

    rng = np.random.default_rng(0)
    inputs = [rng.random((args.rows, 1, 32, 32), dtype=np.float32) for _ in range(16)]
    print(f"{args.streams} streams against http://{args.url}/v2/models/{args.model} for {args.warmup:g} + "
          f"{args.duration:g} s ...", flush=True)
    t0, records = mod.run_load(args.url, args.model, inputs, streams=args.streams, duration_s=args.duration,
                               warmup_s=args.warmup, timeout_s=args.timeout)
    report = mod.summarize_load(records, streams=args.streams, rows=args.rows, warmup_s=args.warmup,
                           duration_s=args.duration)
    timeline = mod.availability_timeline(records, window_s=args.window)
    print(report.summary())
    print("availability by " + f"{args.window:g} s: " + " ".join(f"{share:.3f}" for _, share, _ in timeline))
    if args.json:
        args.json.write_text(json.dumps({"report": dataclasses.asdict(report), "timeline": timeline,
                                         "records": [dataclasses.asdict(r) for r in records]}))
        print(f"wrote {args.json}")
    return 0 if report.requests and report.counts.get("ok", 0) else 1
