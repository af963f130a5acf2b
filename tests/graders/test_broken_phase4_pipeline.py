"""Part p4.pipeline graded end to end on broken submissions: each gets no credit for the criterion it breaks.

A pipeline only runs when every task's piece is there, so each submission is the whole reference (every file
of ``reference/`` copied into the learner's ``starter/``) with one mistake in one file. Each grade runs only the
criterion the test asserts, in quick mode (15-60 s each on two busy cores, about 2-3 min for the file).
"""
from __future__ import annotations

import shutil

import pytest

from gradelib import ROOT, make_submission, run_grade

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase4_production/pipeline"


def reference_with(file: str, old: str, new: str) -> str:
    """The reference's ``file`` with ``old`` replaced by ``new`` (which must occur exactly once)."""
    path = ROOT / PART / "reference" / file
    if not path.is_file():
        pytest.skip("no reference solution in this copy (learner release)")
    src = path.read_text()
    assert src.count(old) == 1, f"{old!r} occurs {src.count(old)} times in {file}"
    return src.replace(old, new)


def grade(tmp_path, file: str, code: str, *criteria: str):
    """Grade ``criteria`` of a copy whose ``starter/`` is the reference's, with ``starter/<file>`` = ``code``."""
    sub = make_submission(tmp_path, {}, PART)
    for src in (ROOT / PART / "reference").glob("*.py"):
        if src.name != "__init__.py":
            shutil.copyfile(src, sub / PART / "starter" / src.name)
    (sub / PART / "starter" / file).write_text(code)
    args = ["--phase", "4", "--part", "pipeline", "--quick", "--submission", str(sub)]
    for cid in criteria:
        args += ["--criterion", cid]
    g = run_grade(tmp_path / "grade", *args)
    assert "Traceback" not in g.stdout and not g.results["grader_errors"], g.stdout[-3000:]
    return g


def test_a_pipeline_that_decodes_one_stream_after_another_gets_no_credit(tmp_path):
    code = reference_with(
        "pipeline.py",
        """            threads = [threading.Thread(target=self._decode_loop, args=(s,), name=f"decode-{s.name}", daemon=True)
                       for s in sources]""",
        """            threads = [threading.Thread(target=lambda: [self._decode_loop(s) for s in sources], name="decode",
                                        daemon=True)]   # BROKEN: one decode thread, the sources one after another""")
    g = grade(tmp_path, "pipeline.py", code, "p4.pipeline.stages")
    c = g.criterion("p4.pipeline.stages")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "one after another" in c["message"], c["message"]


def test_a_pipeline_that_loses_evicted_frames_without_counting_them_gets_no_credit(tmp_path):
    code = reference_with(
        "pipeline.py",
        """            if evicted is not None:
                self._count_drop(evicted.stream, evicted.index, "overload")""",
        """            if evicted is not None:   # BROKEN: the track stage steps over the frame, no report counts it
                with self._lock:
                    self._skipped[evicted.stream].add(evicted.index)
                    self._advance(evicted.stream)""")
    g = grade(tmp_path, "pipeline.py", code, "p4.pipeline.overload")
    c = g.criterion("p4.pipeline.overload")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "lost without being counted" in c["message"], c["message"]


def test_a_batch_that_hands_each_frame_the_next_frames_detections_gets_no_credit(tmp_path):
    last = "        out.append(Detections(boxes, lab[keep].astype(np.int64), s[keep].astype(np.float32)))\n"
    code = reference_with("batching.py", last + "    return out\n",
                          last + "    return out[1:] + out[:1]   # BROKEN: each frame gets the next frame's (another stream's)\n")
    g = grade(tmp_path, "batching.py", code, "p4.pipeline.batching")
    c = g.criterion("p4.pipeline.batching")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "not theirs" in c["message"], c["message"]
    assert "classify_batch:" in c["message"] and "in the pipeline" in c["message"], c["message"]


def test_a_tracker_that_gives_every_detection_a_new_id_gets_no_credit(tmp_path):
    code = reference_with("tracking.py", "        for ti, di in match_detections(predicted, dets, self.iou_min):\n",
                          "        for ti, di in []:   # BROKEN: never continues a track\n")
    g = grade(tmp_path, "tracking.py", code, "p4.pipeline.tracking")
    c = g.criterion("p4.pipeline.tracking")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["value"] < 20 and "IDF1" in c["message"], c
    assert c["details"]["id_switches_per_100_frames"] > 100, c["details"]
