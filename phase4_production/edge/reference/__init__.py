# REFERENCE SOLUTION: excluded from the learner release (make release).
"""Phase 4 starter (part edge): deploy the detector to a small device and keep it on time. Fill in every ``NotImplementedError``.

Work through the tasks in order, reading the matching section of ``phase4_production/EDGE_DEPLOYMENT_GUIDE.md``
first:

    Task 4.7   export.py      export_onnx, quantize_int8, export_executorch    export for the device
    Task 4.8   runtime.py     EdgeRunner.detect                                a deployable bundle
               bundle.py      build_bundle
    Task 4.9   runtime.py     EdgeRunner.serve                                 meet the deadline
    Task 4.10  controller.py  AdaptiveController.observe                       adaptive inference
    Task 4.11  tradeoffs.py   tradeoff_table, pareto_front                     the trade-off report

``runtime.py`` and ``controller.py`` are copied into the bundle and run on the device without torch: import only
the standard library, numpy, cv2 and onnxruntime there. Check one task with ``make grade PHASE=4 PART=edge TASK=N``
and build a bundle with ``make edge-bundle`` (``dist/edge``). ``models.py``, ``protocol.py`` and ``packaging.py``,
beside this folder, and the helpers marked "written in full" are complete.
"""
from ..models import calibration_crops, edge_clip_config, edge_frames, original_classifier, small_classifier
from ..protocol import Manifest, ManifestError, Variant, load_manifest
from .bundle import VARIANTS, build_bundle
from .controller import AdaptiveController
from .export import export_executorch, export_onnx, quantize_int8
from .runtime import EdgeRunner
from .tradeoffs import pareto_front, tradeoff_table

__all__ = [
    # helpers (written in full)
    "original_classifier", "small_classifier", "calibration_crops", "edge_clip_config", "edge_frames",
    "Manifest", "ManifestError", "Variant", "load_manifest",
    # Task 4.7
    "export_onnx", "quantize_int8", "export_executorch",
    # Task 4.8 and 4.9
    "EdgeRunner", "build_bundle", "VARIANTS",
    # Task 4.10
    "AdaptiveController",
    # Task 4.11
    "tradeoff_table", "pareto_front",
]
