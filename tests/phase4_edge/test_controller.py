"""Task 4.10: the adaptive controller on made-up cost traces, with a fake clock (no timing in these tests).

Ladder: ``fp32`` (cost 1), ``int8`` (0.4), ``small`` (0.2); frames every 33.3 ms; budget 0.8 x 33.3 = 26.7 ms.
"""
from __future__ import annotations

import pytest

from .impl import p4e

pytestmark = pytest.mark.phase4_task10

VARIANTS, COSTS = ["fp32", "int8", "small"], [1.0, 0.4, 0.2]
FRAME_S = 1 / 30


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def drive(ctl, clock, cost_of, frames, backlog=0):
    """Feed ``frames`` frames; ``cost_of(variant)`` is each frame's compute time in ms. Returns the variants used."""
    used = []
    for _ in range(frames):
        v = ctl.choose()
        used.append(v)
        ctl.observe(v, cost_of(v), backlog)
        clock.t += FRAME_S
    return used


def make():
    clock = Clock()
    return p4e.AdaptiveController(VARIANTS, COSTS, clock=clock), clock


def normal(v):
    return {"fp32": 17.0, "int8": 7.0, "small": 3.5}[v]


def slowed(v):
    return 3 * normal(v)


def test_a_device_with_room_stays_on_the_best_variant():
    ctl, clock = make()
    assert set(drive(ctl, clock, normal, 90)) == {"fp32"} and ctl.switches == []


def test_a_slowdown_steps_down_at_once_and_recovery_steps_back_up():
    ctl, clock = make()
    drive(ctl, clock, normal, 30)
    used = drive(ctl, clock, slowed, 60)
    assert used[1] != "fp32", "one frame over the frame interval must be enough to step down"
    assert used[-1] == "int8", used[-10:]   # int8 at 21 ms fits; fp32 at 51 ms does not
    used = drive(ctl, clock, normal, 60)
    back = used.index("fp32")
    assert back * FRAME_S <= 1.0, f"back to fp32 only after {back} frames"
    assert set(used[back:]) == {"fp32"}


def test_no_flapping_while_the_device_stays_slow():
    ctl, clock = make()
    drive(ctl, clock, normal, 10)
    drive(ctl, clock, slowed, 150)
    up_moves = [s for s in ctl.switches if VARIANTS.index(s[2]) < VARIANTS.index(s[1])]
    assert len(up_moves) <= 1, ctl.switches


def test_a_backlog_steps_down_even_when_frames_look_cheap():
    ctl, clock = make()
    drive(ctl, clock, lambda v: 10.0, 3, backlog=2)
    assert ctl.choose() != "fp32"


def test_a_standing_queue_steps_down_though_each_frame_fits():
    ctl, clock = make()
    drive(ctl, clock, lambda v: 20.0, 2, backlog=1)
    assert ctl.choose() == "fp32", "one or two frames that found another waiting are a hiccup, not a slow device"
    drive(ctl, clock, lambda v: 20.0, 1, backlog=1)
    assert ctl.choose() != "fp32", "a frame waiting each time three frames started is a standing queue: step down"


def test_a_failed_step_up_is_not_retried_at_once():
    ctl, clock = make()
    drive(ctl, clock, normal, 5)
    # int8 looks cheap but fp32 is in fact slow: each try of fp32 fails
    costs = {"fp32": 40.0, "int8": 7.0, "small": 3.5}
    used = drive(ctl, clock, costs.get, 150)
    assert used.count("fp32") <= 4, f"fp32 tried {used.count('fp32')} times in 5 s"


def test_frames_of_an_earlier_variant_are_ignored():
    ctl, clock = make()
    ctl.observe("fp32", 60.0, 0)   # steps down
    level = ctl.level
    ctl.observe("fp32", 60.0, 0)   # a frame chosen before the switch: no second step
    assert ctl.level == level


@pytest.mark.parametrize("args, kwargs", [(([], []), {}), ((VARIANTS, [1.0, 0.4]), {}), ((VARIANTS, [1.0, 0.0, 0.2]), {}),
                                          ((VARIANTS, COSTS), {"budget": 1.5})])
def test_bad_arguments_are_refused(args, kwargs):
    with pytest.raises(ValueError):
        p4e.AdaptiveController(*args, **kwargs)


def test_after_failed_step_ups_during_a_slowdown_the_best_variant_is_back_soon_after_it():
    ctl, clock = make()
    drive(ctl, clock, normal, 15)
    # slow, with int8 just affordable on paper and too slow in fact: step ups to it fail again and again
    drive(ctl, clock, {"fp32": 60.0, "int8": 30.0, "small": 4.5}.get, 240)
    used = drive(ctl, clock, normal, 90)
    back = used.index("fp32") if "fp32" in used else None
    assert back is not None and back * FRAME_S <= 2.0, f"fp32 back after {back} frames: {ctl.switches[-4:]}"


def test_after_a_deep_slowdown_the_controller_climbs_back_in_one_step():
    ctl, clock = make()
    drive(ctl, clock, normal, 10)
    drive(ctl, clock, lambda v: 5 * normal(v), 60)   # deep: only `small` fits (17.5 ms)
    assert ctl.choose() == "small"
    before = len(ctl.switches)
    used = drive(ctl, clock, normal, 45)
    assert used[-1] == "fp32" and len(ctl.switches) == before + 1, ctl.switches[before:]
