"""Chain the seven Phase 1 tasks into one performance report for a torchvision model.

    python -m phase1_basics.run_report --impl starter --model resnet18 --out grades/phase1-report
    python -m phase1_basics.run_report --impl reference --model mobilenet_v3_large --out /tmp/r --quick

Written in full (not an exercise). Models are built with ``weights=None``: untrained, fine for timing,
and nothing is downloaded. ``--quick`` uses 64x64 inputs and few iterations (seconds, not minutes).
If the chosen implementation still has a stub, it says which task to do next and exits with 1.
"""
from __future__ import annotations

import os

# Kineto (torch.profiler's C++ side) logs progress lines to stderr unless told otherwise; it reads
# this variable at the first profile, so it only has to be set before Task 1.5 runs.
os.environ.setdefault("KINETO_LOG_LEVEL", "6")

import argparse  # noqa: E402
import importlib  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from types import ModuleType  # noqa: E402

import torch  # noqa: E402

__all__ = ["MODELS", "RunConfig", "main", "run"]

#: The architectures the report accepts (all torchvision classification models, weights=None).
MODELS = ("resnet18", "mobilenet_v3_large", "resnet50")


@dataclass(frozen=True)
class RunConfig:
    """Sizes for one report: full (224x224, enough samples) or quick (64x64, a smoke test)."""

    image_size: int
    warmup: int
    iterations: int
    batch_sizes: tuple[int, ...]
    throughput_iterations: int
    memory_batch: int
    profile_iterations: int
    device_iterations: int

    @classmethod
    def create(cls, quick: bool) -> "RunConfig":
        if quick:
            return cls(image_size=64, warmup=2, iterations=20, batch_sizes=(1, 4, 8),
                       throughput_iterations=5, memory_batch=4, profile_iterations=2, device_iterations=10)
        return cls(image_size=224, warmup=10, iterations=100, batch_sizes=(1, 2, 4, 8, 16),
                   throughput_iterations=20, memory_batch=8, profile_iterations=5, device_iterations=50)


def _build(model_name: str) -> torch.nn.Module:
    import torchvision

    return torchvision.models.get_model(model_name, weights=None).eval()


def run(impl: ModuleType, model_name: str, out_dir: Path, cfg: RunConfig) -> Path:
    """Run Tasks 1.1 to 1.7 with ``impl`` (the starter or reference package); return report.md's path."""
    torch.manual_seed(0)
    size = cfg.image_size

    def make_batch(batch_size: int) -> torch.Tensor:
        return torch.randn(batch_size, 3, size, size)         # [B, 3, H, W]

    print(f"Task 1.1  loading {model_name} (torchvision, weights=None)")
    predictor = impl.load_predictor(model_name, kind="torchvision")
    sync = impl.device_sync(predictor.device)
    x = make_batch(1)

    print(f"Task 1.2  latency: {cfg.warmup} warm-up + {cfg.iterations} timed calls at 1x3x{size}x{size}")
    latency = impl.measure_latency(lambda: predictor(x), warmup=cfg.warmup, iterations=cfg.iterations, sync=sync)
    print(f"          p50 {latency.p50_ms:.2f} ms, p99 {latency.p99_ms:.2f} ms"
          f"{' (estimate)' if latency.percentile_is_estimate(99) else ''}, CV {latency.cv:.3f}")

    print(f"Task 1.3  throughput at batch sizes {list(cfg.batch_sizes)}")
    throughput = impl.measure_throughput(predictor, make_batch, cfg.batch_sizes, warmup=2,
                                         iterations=cfg.throughput_iterations, sync=sync)
    for point in throughput:
        print(f"          bs {point.batch_size:>3}: {point.samples_per_s:8.1f} samples/s, "
              f"{point.latency_ms:8.2f} ms per call")

    module = _build(model_name)
    print("Task 1.4  memory")
    params = impl.parameter_bytes(module)
    batch = make_batch(cfg.memory_batch)
    memory = impl.peak_memory_during(lambda: predictor(batch))
    print(f"          parameters and buffers {params / 2**20:.1f} MiB; one batch of {cfg.memory_batch} "
          f"needs {memory.delta_bytes / 2**20:.1f} MiB above the baseline ({memory.device})")

    print("Task 1.5  top operators")
    operators = impl.top_operators(module, x, k=10, warmup=1, iterations=cfg.profile_iterations)
    for op in operators[:3]:
        print(f"          {op.name:<28} {op.self_time_ms:8.2f} ms self, {op.calls} calls")

    print("Task 1.6  CPU versus GPU")
    devices = impl.compare_devices(lambda: _build(model_name), make_batch, batch_size=1,
                                   warmup=min(cfg.warmup, 5), iterations=cfg.device_iterations)
    for row in devices:
        shown = f"p50 {row.p50_ms:.2f} ms" if row.available else f"skipped: {row.reason}"
        print(f"          {row.device:<5} {shown}")

    print(f"Task 1.7  writing the report into {out_dir}")
    paths = impl.write_report(model_name, latency, throughput, memory, operators, devices, out_dir)
    return Path(paths.markdown)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phase1_basics.run_report", description=__doc__.split("\n")[0])
    parser.add_argument("--impl", choices=("starter", "reference"), default="starter",
                        help="which implementation to run (default: starter, your code)")
    parser.add_argument("--model", choices=MODELS, default="resnet18", help="torchvision architecture")
    parser.add_argument("--out", type=Path, required=True, help="folder for report.md, report.json, plots")
    parser.add_argument("--quick", action="store_true", help="64x64 inputs and few iterations")
    args = parser.parse_args(argv)

    try:
        impl = importlib.import_module(f"phase1_basics.{args.impl}")
    except ImportError as exc:
        print(f"cannot import phase1_basics.{args.impl}: {exc}", file=sys.stderr)
        return 2
    try:
        report = run(impl, args.model, args.out, RunConfig.create(args.quick))
    except NotImplementedError as exc:
        found = re.search(r"Task 1\.(\d)", str(exc))
        task = found.group(1) if found else "N"
        print(f"\nNot implemented yet: {exc}", file=sys.stderr)
        print(f"Next: fill in Task 1.{task} in phase1_basics/{args.impl}/, check it with "
              f"`make grade PHASE=1 TASK={task}`, then run this report again.", file=sys.stderr)
        return 1
    print(f"\nReport: {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
