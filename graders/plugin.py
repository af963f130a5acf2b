"""The pytest plugin that turns a phase's grader tests into graded criteria.

Loaded by the orchestrator (``graders.runner``) as ``-p graders.plugin`` in a child process. It:

* imports the learner's implementation once (``graders.submission``) and hands it to criteria
  through the ``learner`` fixture;
* gives each criterion a ``grade`` fixture holding its spec and thresholds for the active profile;
* turns each test's outcome into a :class:`graders.records.CriterionResult` (learner errors become
  failed criteria with hints, ``pytest.skip`` becomes a skipped verdict with its reason, anything
  else is a grader error);
* streams typed events (``graders.events``) to a JSON-lines file, so that the parent can enforce time
  and memory limits and resume after killing a hung or exploding submission.

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
from .course import REPO_ROOT, markers, phase as course_phase
from .outcomes import CriterionSpec, Thresholds, load_outcomes
from .profiles import PROFILES, detect_profile, fingerprint
from .records import CriterionResult
from .submission import Learner, LearnerError, SubmissionError, load_impl
from .hints import compose_hint
from .verdicts import NOISE_LIMIT, judge

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
    g.addoption("--lab-records", required=True)
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
        self.records = open(config.getoption("--lab-records"), "a", encoding="utf-8")
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
        self.records.write(events.encode(event))
        self.records.flush()


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
    st.emit(events.ImportStart())
    try:
        st.learner = Learner(load_impl(st.part.folder, st.impl, st.root))
        st.emit(events.ImportEnd(error=None))
    except LearnerError as e:
        st.learner = Learner(None, str(e))
        st.emit(events.ImportEnd(error=str(e)))


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
    st.emit(events.Start(id=cid, time_limit_s=_cap(spec.time_limit_s, "INFERENCE_LAB_TIME_LIMIT_S"),
                         memory_limit_mb=_cap(spec.memory_limit_mb, "INFERENCE_LAB_MEMORY_LIMIT_MB")))
    if spec.gpu and not st.cuda:
        pytest.skip("needs an NVIDIA GPU (torch.cuda.is_available() is False)")
    if th is None:
        pytest.skip(f"no threshold for profile {st.profile!r} in EXPECTED_OUTCOMES.md")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    cid = _cid(item)
    if cid is None or getattr(item, "_lab_reported", False):
        return
    if rep.when == "call" or (rep.when == "setup" and not rep.passed):
        item._lab_reported = True
        res = _result(item._lab_grade, call.excinfo, time.time() - item._lab_t0)
        _STATE.emit(events.End(id=cid, result=res.to_dict()))


def _fmt(v: float | None) -> str:
    return "none" if v is None else f"{v:.4g}"


def _result(g: Grade, excinfo, duration: float) -> CriterionResult:
    """Turn what the criterion recorded (or raised) into its verdict and points."""
    s, th = g.spec, g.thresholds
    result = partial(CriterionResult.from_spec, s, th, duration_s=duration, details=g.details)
    exc = excinfo.value if excinfo is not None else None
    if exc is not None and excinfo.errisinstance(pytest.skip.Exception):
        return result(verdict="skipped", message=str(getattr(exc, "msg", exc)))
    if isinstance(exc, SubmissionError):
        return result(verdict="fail", value=g.value, message=str(exc))
    if exc is not None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
        return CriterionResult.from_spec(s, th, verdict="error", duration_s=duration,
                                         details={**g.details, "traceback": tb},
                                         message=f"grader error: {type(exc).__name__}: {exc}"[:600])
    if not g.recorded:
        return result(verdict="error", message="grader error: the criterion recorded nothing")
    hint = partial(compose_hint, s, th, value=g.value, measured_hint=g.hint, noise=g.noise, details=g.details)
    if g.forced_fail:
        return result(verdict="fail", value=g.value, message=g.message, hint=hint(verdict="fail", points=0.0))
    v = judge(g.value, th.pass_, th.full, s.better, s.points, interval=g.interval, noisy=g.noisy)
    message = g.message
    sign = ">=" if s.better == "higher" else "<="
    if v.verdict == "fail":
        message = (f"{s.metric} = {_fmt(g.value)}{s.unit}; needs {sign} {th.pass_:g}{s.unit}. "
                   + message).strip()
        if g.noise is not None:
            message += f" (machine noise in the same windows: {g.noise:.1%}, limit {NOISE_LIMIT:.0%})"
    elif v.note:
        message = f"{v.note}. {message}".strip()
    return result(verdict=v.verdict, points=v.points, value=g.value, message=message,
                  hint=hint(verdict=v.verdict, points=v.points))
