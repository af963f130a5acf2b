"""The edge part's command line (helper, written in full): ``python -m phase4_production.edge bundle --out dist/edge``.

``bundle`` calls your ``build_bundle`` (``--impl starter``, or the reference where this copy has one), then checks
the folder the way a device would load it (``protocol.load_manifest``) and prints what is in it. ``make
edge-bundle`` runs it.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from .protocol import ManifestError, load_manifest

__all__ = ["main", "build_parser"]

_HERE = Path(__file__).resolve().parent


def _default_impl() -> str:
    return "reference" if (_HERE / "reference").is_dir() else "starter"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m phase4_production.edge", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bundle", help="build the edge bundle into a folder")
    b.add_argument("--out", type=Path, default=Path("dist/edge"), help="the bundle folder (replaced)")
    b.add_argument("--impl", choices=("starter", "reference"), default=None,
                   help=f"whose build_bundle to run (default here: {_default_impl()})")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 when the bundle was built and its manifest loads, 1 when your code failed, 2 on bad usage."""
    args = build_parser().parse_args(argv)
    impl = args.impl or _default_impl()
    try:
        mod = importlib.import_module(f"phase4_production.edge.{impl}")
    except ModuleNotFoundError as e:
        print(f"cannot import the {impl} implementation: {e}", file=sys.stderr)
        return 2
    try:
        folder = Path(mod.build_bundle(args.out))
        manifest = load_manifest(folder)
    except NotImplementedError as e:
        print(f"not implemented yet: {e}", file=sys.stderr)
        return 1
    except ManifestError as e:
        print(f"the bundle's manifest is wrong: {e}", file=sys.stderr)
        return 1
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in files) / 2**20
    print(f"{impl} bundle in {folder}: {len(files)} files, {size:.1f} MiB")
    for v in manifest.variants:
        print(f"  variant {v.name:<12} {v.model:<32} proposal scale {v.proposal_scale:g}  relative cost {v.relative_cost:g}")
    print(f"run it: cd {folder} && python runner.py < frames > answers.jsonl (README.md: Jetson, Raspberry Pi)")
    return 0
