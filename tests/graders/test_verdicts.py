"""Bands and noise: the verdict logic every criterion shares."""
from __future__ import annotations

import pytest

from graders.verdicts import PASS_FRACTION, band_points, judge


def test_bands_higher_is_better():
    assert judge(1.9, 2.0, 3.0, "higher", 10).verdict == "fail"
    v = judge(2.0, 2.0, 3.0, "higher", 10)
    assert (v.verdict, v.points) == ("pass", 10 * PASS_FRACTION)
    assert judge(2.5, 2.0, 3.0, "higher", 10).points == pytest.approx(10 * (PASS_FRACTION + (1 - PASS_FRACTION) / 2))
    assert judge(3.5, 2.0, 3.0, "higher", 10).points == 10


def test_bands_lower_is_better():
    assert judge(11, 10, 5, "lower", 10).verdict == "fail"
    assert judge(10, 10, 5, "lower", 10).points == pytest.approx(10 * PASS_FRACTION)
    assert judge(4, 10, 5, "lower", 10).points == 10
    assert band_points(7.5, 10, 5, "lower", 10) == pytest.approx(10 * (PASS_FRACTION + (1 - PASS_FRACTION) / 2))


def test_binary_criterion_gets_all_points():
    assert judge(0, 0, 0, "lower", 5).points == 5


def test_no_measurement_fails():
    assert judge(None, 2.0, 3.0, "higher", 10).verdict == "fail"
    assert judge(float("nan"), 2.0, 3.0, "higher", 10).verdict == "fail"


def test_noisy_and_straddling_is_inconclusive_not_fail():
    v = judge(1.9, 2.0, 3.0, "higher", 10, interval=(1.6, 2.3), noisy=True)
    assert v.verdict == "inconclusive" and v.points == 0 and "straddles" in v.note


def test_noise_that_cannot_change_the_verdict_still_decides():
    assert judge(2.6, 2.0, 3.0, "higher", 10, interval=(2.2, 3.1), noisy=True).verdict == "pass"
    assert judge(1.2, 2.0, 3.0, "higher", 10, interval=(1.0, 1.5), noisy=True).verdict == "fail"


def test_quiet_measurement_ignores_its_interval():
    assert judge(1.9, 2.0, 3.0, "higher", 10, interval=(1.6, 2.3), noisy=False).verdict == "fail"
