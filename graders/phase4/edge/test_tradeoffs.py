"""Task 4.11: the trade-off table, checked against the grader's own run of every variant under the edge profile,
and the Pareto front, checked on the learner's rows and on rows the grader draws at random.
"""
from __future__ import annotations

import json
import random

import numpy as np

from ...plugin import criterion
from .device import run_on_device
from .workload import answers_as_predictions, bundle, clip, ready_or_fail

KEYS = ("variant", "f1", "latency_ms", "p99_ms", "cpu_ms_per_frame", "model_bytes", "memory_mb")
F1_TOL = 0.03
COSTS = ("latency_ms", "memory_mb", "model_bytes")


def grader_front(rows, quality="f1", costs=COSTS) -> list[str]:
    def key(r):
        return (-float(r[quality]), *(float(r[c]) for c in costs))

    return [r["variant"] for r in rows
            if not any(all(a <= b for a, b in zip(key(o), key(r))) and key(o) != key(r) for o in rows)]


def random_rows(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(rng.randint(3, 7)):
        rows.append({"variant": f"v{i}", "f1": rng.choice([0.8, 0.85, 0.9]), "latency_ms": rng.choice([5.0, 10.0, 20.0]),
                     "memory_mb": rng.choice([50.0, 80.0]), "model_bytes": rng.choice([10**6, 4 * 10**6])})
    if rng.random() < 0.5:
        rows.append(dict(rows[0], variant="twin"))  # a tie: neither dominates the other
    return rows


@criterion("p4.edge.tradeoffs")
def test_tradeoffs(grade, learner, quick):
    from labdata.detector import evaluate_detections

    folder = bundle(learner)
    frames, gt = clip(4, 30 if quick else 60)
    rows = learner.call("tradeoff_table", folder, frames, gt)
    problems: list[str] = []
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        grade.fail(f"tradeoff_table must return a list of dicts, got {type(rows).__name__}")
        return
    missing = sorted({k for r in rows for k in KEYS if k not in r})
    if missing:
        grade.fail(f"rows lack {missing}: every row holds {list(KEYS)}")
        return
    manifest = json.loads((folder / "bundle.json").read_text())
    variants = [(v["name"], v["model"]) for v in manifest["variants"]]
    names = [r["variant"] for r in rows]
    if names != [n for n, _ in variants]:
        problems.append(f"the rows are {names}; the bundle's variants, in its order, are {[n for n, _ in variants]}")
    mine = {}
    for name, model in variants:
        run = run_on_device(folder, frames, fps=None, variant=name, timeout_s=120)
        ready_or_fail(run)
        f1 = evaluate_detections(answers_as_predictions(run), gt)["f1"]
        compute = [m.get("compute_ms") for _, m in run.answers.values()]
        lat = [1e3 * (t - run.released[i]) for i, (t, _) in run.answers.items() if i in run.released]
        mine[name] = {"f1": round(f1, 4), "latency_ms": round(float(np.median(lat)), 3) if lat else None,
                      "cpu_ms_per_frame": round(1e3 * run.cpu_s / max(len(run.answers), 1), 3) if run.cpu_s else None,
                      "peak_rss_mb": round(run.peak_rss_mb, 1) if run.peak_rss_mb else None,
                      "model_bytes": (folder / model).stat().st_size,
                      "reported_compute_ms": round(float(np.median([c for c in compute if isinstance(c, (int, float))]
                                                                   or [np.nan])), 3)}
    for r in rows:
        m = mine.get(r["variant"])
        if m is None:
            continue
        if abs(float(r["f1"]) - m["f1"]) > F1_TOL:
            problems.append(f"{r['variant']}: F1 {float(r['f1']):.3f} in the table, {m['f1']:.3f} when the grader ran it "
                            f"(at most {F1_TOL} apart)")
        if int(r["model_bytes"]) != m["model_bytes"]:
            problems.append(f"{r['variant']}: model_bytes {r['model_bytes']} in the table, the file holds {m['model_bytes']}")
    order = [r["variant"] for r in sorted(rows, key=lambda r: float(r["latency_ms"])) if r["variant"] in mine]
    truth = sorted(mine, key=lambda n: mine[n]["latency_ms"] or 0)
    if len(truth) >= 2 and (order[0] != truth[0] or order[-1] != truth[-1]):
        problems.append(f"the table's fastest and slowest variants ({order[0]}, {order[-1]}) are not the grader's "
                        f"({truth[0]}, {truth[-1]})")
    got = learner.call("pareto_front", rows)
    if list(got) != grader_front(rows):
        problems.append(f"pareto_front of your rows gave {list(got)}; the non-dominated variants are {grader_front(rows)}")
    rng = random.Random()
    for _ in range(20):
        trial = random_rows(rng)
        got = learner.call("pareto_front", trial)
        if list(got) != grader_front(trial):
            problems.append(f"pareto_front gave {list(got)} on {trial}; the non-dominated variants are "
                            f"{grader_front(trial)}")
            break
    table = [dict(variant=n, **m) for n, m in mine.items()]
    grade.record(len(problems), message="; ".join(problems) or f"{len(rows)} variants, the table agrees with the grader's "
                 f"runs; front {grader_front(rows)}",
                 details={"problems": problems, "your_rows": rows, "grader_rows": table, "front": grader_front(rows)})
