"""The pytest plugin that turns a phase's grader tests into graded criteria.

Loaded by the orchestrator (``graders.runner``) as ``-p graders.plugin`` in a child process. It:

* imports the learner's implementation once (``graders.submission``) and hands it to criteria
  through the ``learner`` fixture;
* gives each criterion a ``grade`` fixture holding its spec and thresholds for the active profile;
* reports each test's raw outcome (what it measured, or the learner error / skip / grader error it
  ended with) as an :class:`graders.events.End`; the parent decides verdicts and points (``graders.decide``);
* streams typed events (``graders.events``), signed (``graders.channel``), on the pipe the parent
  passed, so that the parent can enforce time and memory limits, resume after killing a hung or exploding
  submission, and tell a forged event from the grader's own;
* watches the learner's code (``graders.tamper``): an audit hook installed before its import, and the
  grader's tools checked for replacement at each criterion's start and end and after each learner call.

One child grades one part of a phase (``--lab-part``; a single-part phase has none).

A criterion is an ordinary test function decorated with :func:`criterion`.
"""
from __future__ import annotations

import os
import time
import traceback
from pathlib import Path
from functools import partial
from typing import Any, Callable

import pytest

from . import events
from . import harness  # binds the grader's clock before learner code is imported
from .channel import Signer, read_key
from .course import REPO_ROOT, markers, phase as course_phase
from .decide import GPU_SKIP, NO_THRESHOLD_SKIP
from .outcomes import CriterionSpec, Thresholds, load_outcomes
from .profiles import PROFILES, detect_profile, fingerprint
from .submission import Learner, LearnerError, SubmissionError, learner_dirs, load_impl, reference_dirs
from .tamper import AuditGuard, Snapshot
from .tamper.baseline import SLOWDOWN_FLAG, workload_ms
from .verdicts import NOISE_LIMIT

__all__ = ["criterion", "Grade"]


def criterion(cid: str) -> Callable:
    """Mark a test function as the grader of criterion ``cid`` (declared in EXPECTED_OUTCOMES.md)."""

    def wrap(fn):
        fn._lab_criterion = cid
        return fn

    return wrap


class Grade:
    """What a criterion test records: the grader's own measurement and how to read it."""

    def __init__(self, spec: CriterionSpec, thresholds: Thresholds | None, profile: str, quick: bool,
                 cuda: bool):
        self.spec, self.thresholds, self.profile, self.quick, self.cuda = spec, thresholds, profile, quick, cuda
        self.value: float | None = None
        self.message = ""
        self.details: dict[str, Any] = {}
        self.interval: tuple[float, float] | None = None
        self.noisy = False
        self.noise: float | None = None
        self.hint = ""
        self.recorded = False
        self.forced_fail = False

    def record(self, value: float, *, message: str = "", details: dict | None = None,
               interval: tuple[float, float] | None = None, noisy: bool | None = None,
               noise: float | None = None, hint: str = "") -> None:
        """The measured value in the criterion's unit; thresholds decide the verdict.

        Args:
            value: the grader's measurement.
            message: what was measured, in one sentence.
            details: raw figures for the reports (``samples`` are scanned for outliers by the hint).
            interval: the plausible range of ``value`` (a confidence interval of the statistic compared).
            noisy: the noise could flip the verdict; ``None`` derives it from ``noise``.
            noise: the machine's noise measured in the same windows (IQR/median scale, see
                ``Summary.noise``); reported in a FAIL's message and in the hint.
            hint: what this measurement says to do (computed by the criterion; default: the spec's hint).
        """
        self.value = float(value)
        self.message = message
        self.details.update(details or {})
        if noisy is None:
            noisy = noise is not None and noise > NOISE_LIMIT
        if noise is not None:
            self.details.setdefault("machine_noise", noise)
        self.interval, self.noisy, self.noise, self.hint, self.recorded = interval, noisy, noise, hint, True

    def fail(self, message: str, *, value: float | None = None, details: dict | None = None, hint: str = "") -> None:
        """Fail regardless of thresholds (for example: correctness gate before a speed measurement)."""
        self.value = value
        self.message = message
        self.hint = hint
        self.details.update(details or {})
        self.recorded = self.forced_fail = True


# ## pytest hooks ----------------------------------------------------------------------------

def pytest_addoption(parser):
    g = parser.getgroup("inference-lab grading")
    g.addoption("--lab-phase", type=int, required=True)
    g.addoption("--lab-part", default=None, help="the part of the phase to grade (none: a single-part phase)")
    g.addoption("--lab-impl", default="starter")
    g.addoption("--lab-root", default=str(REPO_ROOT), help="the copy of the repo holding the learner's code")
    g.addoption("--lab-profile", default=None)
    g.addoption("--lab-quick", action="store_true")
    g.addoption("--lab-task", type=int, default=None)
    g.addoption("--lab-events-fd", type=int, required=True, help="the pipe the parent reads events from")
    g.addoption("--lab-key-fd", type=int, required=True, help="where the signing key is read from (once)")
    g.addoption("--lab-tmp", default=None, help="the child's own temporary folder (the learner may write there)")
    g.addoption("--lab-done", default="", help="comma-separated criterion ids already graded")
    g.addoption("--lab-import-failed", default="", help="skip importing; this is why it failed before")


class _State:
    def __init__(self, config):
        self.config = config
        self.phase = config.getoption("--lab-phase")
        self.part = course_phase(self.phase).part(config.getoption("--lab-part"))
        self.impl = config.getoption("--lab-impl")
        self.root = Path(config.getoption("--lab-root"))
        self.quick = config.getoption("--lab-quick")
        self.task = config.getoption("--lab-task")
        self.signer = Signer(read_key(config.getoption("--lab-key-fd")))
        self.out = os.fdopen(config.getoption("--lab-events-fd"), "w", encoding="utf-8")
        self.tmp = Path(config.getoption("--lab-tmp") or os.environ.get("TMPDIR", "/tmp"))
        self.snapshot: Snapshot | None = None
        self.guards: list[str] = []
        self.reported: set[str] = set()
        self.workload_ms: float | None = None
        self.done = {c for c in config.getoption("--lab-done").split(",") if c}
        self.outcomes = load_outcomes(self.phase)
        self.learner: Learner | None = None
        self.import_failed = config.getoption("--lab-import-failed")
        import torch

        harness.pin_threads()
        self.cuda = bool(torch.cuda.is_available())
        self.fingerprint = fingerprint()
        self.fingerprint["cuda_available"] = self.cuda
        self.fingerprint["threads"] = torch.get_num_threads()
        prof = config.getoption("--lab-profile") or detect_profile(self.fingerprint, self.cuda)
        if prof not in PROFILES:
            raise pytest.UsageError(f"unknown profile {prof!r}; profiles are {PROFILES}")
        self.profile = prof
        self.emit(events.Session(profile=prof, fingerprint=self.fingerprint, pid=os.getpid()))

    def emit(self, event: events.Event) -> None:
        try:
            self.out.write(self.signer.sign(events.encode(event).rstrip("\n")))
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the parent is gone, or the learner closed the pipe
            os._exit(3)

    def flag(self, severity: str, what: str, where: str = "") -> None:
        self.emit(events.Flag(severity=severity, what=what, where=where))

    def check_integrity(self, when: str) -> None:
        """Emit a ``tampered`` flag for each of the grader's tools the learner's code replaced."""
        if self.snapshot is None:
            return
        for change in self.snapshot.changes():
            if change not in self.reported:  # once per criterion (reset at each start), with when it was seen
                self.reported.add(change)
                self.flag("tampered", change, when)

    def guard(self) -> None:
        """Before the learner's package is imported: snapshot the grader's tools, install the audit hook."""
        try:
            import onnxruntime  # noqa: F401 - snapshot its entry points before a submission can touch them
        except ImportError:
            pass
        self.workload_ms = workload_ms()
        self.snapshot = Snapshot.take()
        self.guards.append(f"integrity checks ({len(self.snapshot)} grader and library entry points)")
        code = learner_dirs(self.root, self.part.folder, self.impl, REPO_ROOT)
        refs = reference_dirs(self.root, self.impl, REPO_ROOT)
        writable = [self.tmp] + ([self.root] if self.root.resolve() != REPO_ROOT.resolve() else [])
        writable += [Path(os.environ[v]) for v in ("MPLCONFIGDIR",) if os.environ.get(v)]
        AuditGuard(learner_dirs=code, writable=writable, reference_dirs=refs, report=self.flag).install()
        self.guards.append("audit hook (reference, writes, network, memory digging)")


_STATE: _State | None = None


def pytest_configure(config):
    global _STATE
    _STATE = _State(config)
    config.addinivalue_line("markers", "criterion: a graded criterion")
    for line in markers():
        config.addinivalue_line("markers", line)


def _cap(limit: float, env: str) -> float:
    """A limit from EXPECTED_OUTCOMES.md, lowered (never raised) by an environment variable."""
    try:
        return min(limit, float(os.environ[env]))
    except (KeyError, ValueError):
        return limit


def _cid(item) -> str | None:
    return getattr(getattr(item, "function", None), "_lab_criterion", None)


def pytest_collection_modifyitems(session, config, items):
    st = _STATE
    keep, drop = [], []
    for item in items:
        cid = _cid(item)
        spec = st.outcomes.criteria.get(cid) if cid else None
        if cid is None or cid in st.done or (spec and st.task is not None and spec.task != st.task):
            drop.append(item)
        elif spec is None or spec.part != st.part.name:
            where = "is not declared in" if spec is None else f"belongs to part {spec.part} of"
            st.emit(events.GraderError(message=f"{item.nodeid}: criterion {cid!r} {where} {st.outcomes.path.name}"))
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # Task order (then file order within a task): progress lines read like the guide.
    order = list(st.outcomes.criteria)
    keep.sort(key=lambda it: (st.outcomes.criteria[_cid(it)].task, order.index(_cid(it))))
    items[:] = keep


def pytest_collection_finish(session):
    st = _STATE
    if st.import_failed:
        st.learner = Learner(None, st.import_failed)
        return
    st.guard()
    st.emit(events.ImportStart(guards=st.guards, workload_ms=st.workload_ms))
    try:
        st.learner = Learner(load_impl(st.part.folder, st.impl, st.root), after_call=st.check_integrity)
        error = None
    except LearnerError as e:
        st.learner = Learner(None, str(e))
        error = str(e)
    st.check_integrity("while your package was imported")
    st.emit(events.ImportEnd(error=error))


def pytest_sessionfinish(session):
    """Record which phase modules were imported (tests prove the reference never is, unless graded)."""
    import sys

    st = _STATE
    if st is not None:
        pkg = st.part.folder.split("/")[0]
        st.emit(events.SessionEnd(modules=sorted(m for m in sys.modules if m == pkg or m.startswith(pkg + "."))))


@pytest.fixture(scope="session")
def learner() -> Learner:
    """The learner's implementation package (``phaseN_x[.<part>].<impl>``), wrapped by :class:`Learner`."""
    return _STATE.learner


@pytest.fixture
def grade(request) -> Grade:
    return request.node._lab_grade


@pytest.fixture
def timer(benchmark) -> harness.GraderTimer:
    """The grader's timer; its first measurement in a criterion goes through pytest-benchmark."""
    return harness.GraderTimer(benchmark)


@pytest.fixture(scope="session")
def quick() -> bool:
    return _STATE.quick


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    st = _STATE
    cid = _cid(item)
    spec = st.outcomes.criteria[cid]
    th = spec.thresholds_for(st.profile)
    item._lab_grade = Grade(spec, th, st.profile, st.quick, st.cuda)
    item._lab_t0 = time.time()
    st.reported.clear()
    st.emit(events.Start(id=cid, time_limit_s=_cap(spec.time_limit_s, "INFERENCE_LAB_TIME_LIMIT_S"),
                         memory_limit_mb=_cap(spec.memory_limit_mb, "INFERENCE_LAB_MEMORY_LIMIT_MB")))
    st.check_integrity("before this criterion started")
    if spec.gpu and not st.cuda:
        pytest.skip(GPU_SKIP)
    if th is None:
        pytest.skip(NO_THRESHOLD_SKIP.format(profile=st.profile))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    cid = _cid(item)
    if cid is None or getattr(item, "_lab_reported", False):
        return
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        item._lab_reported = True
        duration = time.time() - item._lab_t0
        _STATE.check_integrity("by the end of this criterion")
        g = item._lab_grade
        if _STATE.workload_ms and rep.when == "call" and ({"benchmark", "timer"} & set(item.fixturenames) or duration > 2):
            now = workload_ms()
            if now > SLOWDOWN_FLAG * _STATE.workload_ms:  # once more: a burst of machine noise passes
                time.sleep(0.2)
                now = min(now, workload_ms())
            g.details["grader_workload_ms"] = {"before_your_import": round(_STATE.workload_ms, 3), "after": round(now, 3)}
        _STATE.emit(_end(cid, g, call.excinfo, duration))


def _end(cid: str, g: Grade, excinfo, duration: float) -> events.End:
    """What the criterion measured (or the exception it ended with), raw: the parent decides the verdict."""
    end = partial(events.End, id=cid, duration_s=round(duration, 3), details=g.details)
    exc = excinfo.value if excinfo is not None else None
    if exc is not None and excinfo.errisinstance(pytest.skip.Exception):
        return end(outcome="skipped", message=str(getattr(exc, "msg", exc)))
    if isinstance(exc, SubmissionError):
        return end(outcome="raised", value=g.value, message=str(exc))
    if exc is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
        return end(outcome="error", details={**g.details, "traceback": tb},
                   message=f"grader error: {type(exc).__name__}: {exc}"[:600])
    if not g.recorded:
        return end(outcome="empty")
    if g.forced_fail:
        return end(outcome="failed", value=g.value, message=g.message, hint=g.hint)
    return end(outcome="recorded", value=g.value, message=g.message, hint=g.hint, noise=g.noise, noisy=g.noisy,
               interval=list(g.interval) if g.interval is not None else None)
