"""The server part's command line (helper, written in full): ``python -m phase4_production.server ...``.

- ``repository --out model_repository``: your ``build_repository`` (the digit classifier, Triton's layout), then
  the folder loaded the way your server loads it.
- ``serve --repository model_repository [--port 8000] [--workers]``: your ``load_repository`` + ``InferenceServer``
  (with ``--workers``: your ``ScaledServer``, worker processes as each ``instance_group`` says) behind
  ``app.make_app`` on 127.0.0.1 until Ctrl-C or SIGTERM, which drain it (``docker stop`` sends SIGTERM); try
  ``curl localhost:8000/v2/models/digits``.
- ``triton --model model_repository/digits``: real Triton (``make triton`` first) serving the same folder, until
  Ctrl-C.

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
    for p in (r, s):
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
