"""Part p4.pipeline graded end to end on broken submissions: each gets no credit for the criterion it breaks.

A pipeline only runs when every task's piece is there, so each submission is the whole reference (every file
of ``reference/`` copied into the learner's ``starter/``) with one mistake in one file. Each grade runs only the
criterion the test asserts, in quick mode (15-60 s each on two busy cores, about 3-4 min for the file).
"""
from __future__ import annotations

import pytest

from gradelib import grade_broken, reference_with

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase4_production/pipeline"




def test_a_pipeline_that_decodes_one_stream_after_another_gets_no_credit(tmp_path):
    code = reference_with(
        PART, "pipeline.py",
        """            threads = [threading.Thread(target=self._decode_loop, args=(s,), name=f"decode-{s.name}", daemon=True)
                       for s in sources]""",
        """            threads = [threading.Thread(target=lambda: [self._decode_loop(s) for s in sources], name="decode",
                                        daemon=True)]   # BROKEN: one decode thread, the sources one after another""")
    g = grade_broken(tmp_path, PART, "pipeline.py", code, "p4.pipeline.stages", on_reference=True)
    c = g.criterion("p4.pipeline.stages")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "one after another" in c["message"], c["message"]


def test_a_pipeline_that_loses_evicted_frames_without_counting_them_gets_no_credit(tmp_path):
    code = reference_with(
        PART, "pipeline.py",
        """            if evicted is not None:
                self._count_drop(evicted.stream, evicted.index, "overload")""",
        """            if evicted is not None:   # BROKEN: the track stage steps over the frame, no report counts it
                with self._lock:
                    self._skipped[evicted.stream].add(evicted.index)
                    self._advance(evicted.stream)""")
    g = grade_broken(tmp_path, PART, "pipeline.py", code, "p4.pipeline.overload", on_reference=True)
    c = g.criterion("p4.pipeline.overload")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "lost without being counted" in c["message"], c["message"]


def test_a_batch_that_hands_each_frame_the_next_frames_detections_gets_no_credit(tmp_path):
    last = "        out.append(Detections(boxes, lab[keep].astype(np.int64), s[keep].astype(np.float32)))\n"
    code = reference_with(PART, "batching.py", last + "    return out\n",
                          last + "    return out[1:] + out[:1]   # BROKEN: each frame gets the next frame's (another stream's)\n")
    g = grade_broken(tmp_path, PART, "batching.py", code, "p4.pipeline.batching", on_reference=True)
    c = g.criterion("p4.pipeline.batching")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "not theirs" in c["message"], c["message"]
    assert "classify_batch:" in c["message"] and "in the pipeline" in c["message"], c["message"]


def test_a_tracker_that_gives_every_detection_a_new_id_gets_no_credit(tmp_path):
    code = reference_with(PART, "tracking.py", "        for ti, di in match_detections(predicted, dets, self.iou_min):\n",
                          "        for ti, di in []:   # BROKEN: never continues a track\n")
    g = grade_broken(tmp_path, PART, "tracking.py", code, "p4.pipeline.tracking", on_reference=True)
    c = g.criterion("p4.pipeline.tracking")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["value"] < 20 and "IDF1" in c["message"], c
    assert c["details"]["id_switches_per_100_frames"] > 100, c["details"]


def test_a_pipeline_that_keeps_every_frames_crops_gets_no_soak_credit(tmp_path):
    code = reference_with(
        PART, "pipeline.py",
        """            self._clock.end(token)
            if not self.config.keep_images:
                frame.image = None""",
        """            self._clock.end(token)
            self.__dict__.setdefault("_debug_crops", []).append(crops)   # BROKEN: kept 'for a debug dump', never let go
            if not self.config.keep_images:
                frame.image = None""")
    g = grade_broken(tmp_path, PART, "pipeline.py", code, "p4.pipeline.soak", on_reference=True)
    c = g.criterion("p4.pipeline.soak")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["value"] > 8 and "resident memory grew" in c["message"], c
