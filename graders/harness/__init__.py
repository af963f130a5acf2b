"""The grader's own, trusted measurement tools.

Every number that decides a grade is measured here, never taken from the learner's code:

* :mod:`.stats`    percentiles with the sample counts that justify them, IQR, CV.
* :mod:`.timing`   warm-up, device synchronisation, blocked repeats, raw samples kept.
* :mod:`.witness`  the grader's clock on the very calls a learner times.
* :mod:`.paired`   interleaved A/B timing and the median of paired ratios, re-measured when noisy.
* :mod:`.checked`  the outputs of timed calls, checked after the timing (``check=`` of the timers).
* :mod:`.threads`  pinned thread counts for PyTorch and ONNX Runtime.
* :mod:`.stalls`   machine stalls seen by a canary process in the same window; the GC paused.
* :mod:`.settle`   a figure that lags what it counts, re-read until it settles (bounded).

The timer is captured when this package is imported, before any learner module is, so a
submission that patches ``time.perf_counter`` cannot change the grader's clock.
"""
from .load import LoadRun, UnbatchedServer, closed_loop, max_overlap, poisson, poisson_gap_problem
from .paired import PairedResult, alternating, paired_ratio
from .settle import settled
from .stalls import Stalls, gc_paused, watch_stalls
from .stats import (MIN_SAMPLES, Summary, median_interval, percentile_label, quotient_interval, ratio_disagreement,
                    straddles, summarize)
from .threads import ort_session_options, pin_threads, threads
from .timing import GraderTimer, Timing, cuda_sync, time_callable
from .witness import Witness, WitnessedRun

__all__ = [
    "MIN_SAMPLES", "Summary", "summarize", "percentile_label", "median_interval", "ratio_disagreement", "straddles",
    "quotient_interval",
    "Witness", "WitnessedRun",
    "Timing", "time_callable", "cuda_sync", "GraderTimer",
    "PairedResult", "alternating", "paired_ratio",
    "pin_threads", "ort_session_options", "threads",
    "Stalls", "watch_stalls", "gc_paused", "settled",
    "LoadRun", "closed_loop", "poisson", "UnbatchedServer", "max_overlap", "poisson_gap_problem",
]
