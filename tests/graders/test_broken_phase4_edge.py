"""Part p4.edge graded end to end on broken submissions: each gets no credit for the criterion it breaks.

A bundle only runs when every task's piece is there, so each submission is the whole reference with one mistake
in one file. Each grade runs only the criterion the test asserts, in quick mode (about 40-60 s each on two busy
cores: a bundle build, then one run under the edge profile).
"""
from __future__ import annotations

import pytest

from gradelib import ROOT, grade_broken, reference_with

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase4_production/edge"


def test_a_bundle_that_imports_torch_gets_no_credit(tmp_path):
    code = reference_with(PART, "runtime.py", "import numpy as np\n\ntry:  # in the course\n",
                          "import numpy as np\nimport torch  # noqa: F401  BROKEN: the device has no torch\n\n"
                          "try:  # in the course\n")
    g = grade_broken(tmp_path, PART, "runtime.py", code, "p4.edge.bundle", on_reference=True)
    c = g.criterion("p4.edge.bundle")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "'torch'" in c["message"] and "blocked" in c["message"], c["message"]


def test_a_bundle_that_reads_a_file_outside_its_folder_gets_no_credit(tmp_path):
    outside = ROOT / "datasets" / "README.md"
    code = reference_with(PART, "runtime.py", "        self.manifest = load_manifest(folder)\n",
                          "        self.manifest = load_manifest(folder)\n"
                          f"        self.notes = open({str(outside)!r}).read()  # BROKEN: a file of the dev tree\n")
    g = grade_broken(tmp_path, PART, "runtime.py", code, "p4.edge.bundle", on_reference=True)
    c = g.criterion("p4.edge.bundle")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "outside its folder" in c["message"] and "README.md" in c["message"], c["message"]


def test_a_controller_that_always_runs_the_cheapest_variant_gets_no_accuracy_credit(tmp_path):
    # The reference's cheapest rung (the small model on half-size proposals) is itself 76-99 % as accurate as FP32,
    # depending on the clip: always running it is sometimes a fair deal. This ladder ends on a rung that is too cheap
    # to be accurate (quarter-size proposals), and the controller never leaves it.
    code = reference_with(PART, "controller.py", "        return self.variants[self.level]\n",
                          "        return self.variants[-1]  # BROKEN: always the cheapest rung\n")
    ladder = reference_with(PART, "bundle.py", '    ("small_half", "models/small_int8.onnx", 0.5),\n',
                            '    ("small_half", "models/small_int8.onnx", 0.5),\n'
                            '    ("small_quarter", "models/small_int8.onnx", 0.25),  # BROKEN: too cheap to see\n')
    g = grade_broken(tmp_path, PART, "controller.py", code, "p4.edge.accuracy", on_reference=True,
                     also={"bundle.py": ladder})
    c = g.criterion("p4.edge.accuracy")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["value"] < 90, c


def test_a_controller_that_never_adapts_gets_no_adaptive_credit(tmp_path):
    code = reference_with(PART, "controller.py", "        if variant != self.variants[self.level]:\n",
                          "        return  # BROKEN: never adapts\n        if variant != self.variants[self.level]:\n")
    g = grade_broken(tmp_path, PART, "controller.py", code, "p4.edge.adaptive", on_reference=True)
    c = g.criterion("p4.edge.adaptive")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert c["value"] > 25, c
