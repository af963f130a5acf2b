"""Part p2.compression graded end to end on broken submissions: each gets no credit for the criterion it breaks.

Each submission is the reference with one mistake (the part's other files the reference's too), graded on the one
criterion the test asserts, in quick mode.
"""
from __future__ import annotations

import pytest

from gradelib import grade_broken, reference_with

pytestmark = [pytest.mark.grading, pytest.mark.slow]

PART = "phase2_optimization/compression"


def test_pruning_that_only_zeroes_channels_but_claims_fewer_flops_gets_no_credit(tmp_path):
    # The "pruned" network keeps every shape and zeroes the dropped filters; count_cost then claims the FLOPs that a
    # real cut would have left.
    code = reference_with(
        PART, "structured.py",
        "        block.conv1, block.bn1, block.conv2 = prune_channels(block.conv1, block.bn1, block.conv2, "
        "keep_of(block.conv1))\n",
        "        drop = torch.ones(block.conv1.out_channels, dtype=torch.bool)  # BROKEN: zeroes, keeps the shapes\n"
        "        drop[keep_of(block.conv1)] = False\n"
        "        with torch.no_grad():\n"
        "            block.conv1.weight[drop] = 0.0\n"
        "            block.bn1.weight[drop] = 0.0\n"
        "            block.bn1.bias[drop] = 0.0\n")
    code = code.replace("    return ModelCost(params=int(params), flops=int(counter.get_total_flops()))\n",
                        "    nonzero = sum(int((p != 0).sum()) for p in model.parameters())  # BROKEN: zeros 'saved'\n"
                        "    return ModelCost(params=nonzero, flops=int(counter.get_total_flops() * nonzero / params))\n")
    g = grade_broken(tmp_path, PART, "structured.py", code, "p2.compression.structured_exact", on_reference=True)
    c = g.criterion("p2.compression.structured_exact")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "count_cost" in c["message"] and "zeroed weight still costs" in c["message"], c["message"]


def test_pruning_that_cuts_batchnorm_at_the_wrong_channels_gets_no_credit(tmp_path):
    code = reference_with(PART, "structured.py", "            new_bn.weight.copy_(bn.weight[keep])\n",
                          "            new_bn.weight.copy_(bn.weight[:k])  # BROKEN: the first k, not the kept ones\n")
    g = grade_broken(tmp_path, PART, "structured.py", code, "p2.compression.structured_exact", on_reference=True)
    c = g.criterion("p2.compression.structured_exact")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "BatchNorm" in c["message"] and "silenced" in c["message"], c["message"]


def test_pruning_that_leaves_its_masks_and_reports_the_request_gets_no_credit(tmp_path):
    code = reference_with(PART, "unstructured.py", "    for module, name in targets:\n        prune.remove(module, name)\n",
                          "    pass  # BROKEN: the masks stay\n")
    code = code.replace("layers.append(LayerSparsity(name=name, zeros=int((w == 0).sum()), total=int(w.numel())))",
                        "layers.append(LayerSparsity(name=name, zeros=int(0.5 * w.numel()), total=int(w.numel())))")
    g = grade_broken(tmp_path, PART, "unstructured.py", code, "p2.compression.sparsity_exact", on_reference=True)
    c = g.criterion("p2.compression.sparsity_exact")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "prune.remove" in c["message"], c["message"]
    assert any("sparsity_report says" in p for p in c["details"]["problems"]), c["details"]


def test_a_loss_that_ignores_the_teacher_gets_no_credit(tmp_path):
    code = reference_with(PART, "distillation.py", "    return alpha * soft + (1.0 - alpha) * hard\n",
                          "    return hard  # BROKEN: the hard labels only\n")
    g = grade_broken(tmp_path, PART, "distillation.py", code, "p2.compression.kd_loss", on_reference=True)
    c = g.criterion("p2.compression.kd_loss")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "expected" in c["message"], c["message"]


def test_a_student_distilled_with_the_hard_labels_only_gets_no_credit(tmp_path):
    # The loss itself is right (kd_loss passes), but train_student never uses it: both students learn from the
    # labels alone.
    code = reference_with(PART, "distillation.py", "                if teacher_logits is None:\n",
                          "                if True:  # BROKEN: the hard labels only, teacher or not\n")
    g = grade_broken(tmp_path, PART, "distillation.py", code, "p2.compression.distill_gain", on_reference=True)
    c = g.criterion("p2.compression.distill_gain")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert abs(c["details"]["distilled_cross_entropy"] - c["details"]["alone_cross_entropy"]) < 1e-9, c["details"]


def test_a_baseline_weakened_to_flatter_the_teacher_gets_no_credit(tmp_path):
    # Without a teacher the student trains for 5 epochs instead of 120: distillation "wins" by a mile.
    code = reference_with(PART, "distillation.py", "        for _ in range(tc.epochs):\n",
                          "        for _ in range(tc.epochs if teacher is not None else 5):  # BROKEN: a weak baseline\n")
    g = grade_broken(tmp_path, PART, "distillation.py", code, "p2.compression.distill_gain", on_reference=True)
    c = g.criterion("p2.compression.distill_gain")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "baseline" in c["message"], c["message"]


def test_an_openvino_compile_on_every_core_gets_no_credit(tmp_path):
    code = reference_with(PART, "peer_runtime.py", "    config = {props.inference_num_threads: threads, props.num_streams: 1,\n",
                          "    config = {props.num_streams: 1,  # BROKEN: OpenVINO picks the thread count\n")
    g = grade_broken(tmp_path, PART, "peer_runtime.py", code, "p2.compression.openvino_agree", on_reference=True)
    c = g.criterion("p2.compression.openvino_agree")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "INFERENCE_NUM_THREADS" in c["message"], c["message"]


def test_a_quantizer_that_returns_the_fp32_model_gets_no_credit(tmp_path):
    code = reference_with(PART, "peer_runtime.py",
                          "    return nncf.quantize(model, nncf.Dataset(items), preset=nncf.QuantizationPreset.PERFORMANCE,\n"
                          "                         subset_size=len(items), fast_bias_correction=True)\n",
                          "    return model  # BROKEN: never quantized\n")
    g = grade_broken(tmp_path, PART, "peer_runtime.py", code, "p2.compression.openvino_int8_accuracy",
                     on_reference=True)
    c = g.criterion("p2.compression.openvino_int8_accuracy")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "FakeQuantize" in c["message"], c["message"]


def test_a_profile_summed_over_runs_gets_no_credit(tmp_path):
    code = reference_with(PART, "peer_runtime.py",
                          "    return _summed(rows, runs)\n    # END SOLUTION\n    \"\"\" # BEGIN PROMPT\n"
                          "    # Step 1: one infer request",
                          "    return _summed(rows, 1)  # BROKEN: every run added up\n    # END SOLUTION\n"
                          "    \"\"\" # BEGIN PROMPT\n    # Step 1: one infer request")
    g = grade_broken(tmp_path, PART, "peer_runtime.py", code, "p2.compression.kernel_profile", on_reference=True)
    c = g.criterion("p2.compression.kernel_profile")
    assert c["verdict"] == "fail" and c["points"] == 0, c
    assert "nodes per inference" in c["message"], c["message"]
