"""Tamper evidence: what the grader watches while a learner's code runs in the grading child.

* :mod:`.audit`      a Python audit hook (it cannot be removed once installed): the reference solution is
  not importable or readable while a submission is graded, writes outside the submission's folder and
  network connections are refused, and memory-digging tools used from the learner's code are flagged.
* :mod:`.integrity`  the grader's clocks, measurement helpers and the ``torch``/``onnxruntime``/``numpy``
  entry points it uses, snapshot before the learner's code is imported and checked after its calls.
* :mod:`.scan`       a static scan of the submission's source for what no honest submission needs,
  reported to the instructor (never a silent fail).

Each finding becomes a :class:`graders.events.Flag`: ``tampered`` fails the criterion that was running,
``flag`` is reported. See the course README, "Grading untrusted submissions", for what is and is not
protected.
"""
from .audit import AuditGuard
from .integrity import Snapshot
from .scan import Finding, scan_submission

__all__ = ["AuditGuard", "Snapshot", "Finding", "scan_submission"]
