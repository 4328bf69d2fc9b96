"""Profiles: loading both formats, and the measured-profile curve (interpolation, OOM, noise)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from service.platform.emulator.model import DEFAULT_SIGMA, sigma_from_percentiles
from service.platform.emulator.profiles import (
    CodeProfile,
    MeasuredPoint,
    MeasuredProfile,
    ProfileError,
    load_profile,
    parse_profile,
)
from service.platform.interface import Traits

EXAMPLES = sorted((Path(__file__).parents[2] / "service/platform/profiles").glob("*.json"))
DESIGN_PROFILE = {
    "name": "image-recognition",
    "runtime": "python",
    "memory_mb": {
        "512": {"p10": 1800.0, "p50": 1877.0, "p90": 1990.0, "mem_used_mb": 512.0},
        "1024": {"p10": 900.0, "p50": 932.0, "p90": 1010.0, "mem_used_mb": 592.0},
    },
    "cold_start_ms": 900.0,
}
CODE_PROFILE = {
    "name": "builtin:mlp",
    "cpu_ms": 1234.0,
    "parallel_fraction": 0.3,
    "max_threads": 2,
    "io_ms": 0.0,
    "peak_memory_mb": 210.0,
    "init_ms": 450.0,
}
ALL_SIZES = np.arange(128, 10_241)


def _write(tmp_path: Path, data: object, name: str = "p.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_both_formats_load_and_are_told_apart_by_their_keys(tmp_path: Path) -> None:
    measured = load_profile(_write(tmp_path, DESIGN_PROFILE))
    assert isinstance(measured, MeasuredProfile)
    assert [p.memory_mb for p in measured.points] == [512, 1024]
    assert measured.cold_start_ms == 900.0
    code = load_profile(_write(tmp_path, CODE_PROFILE, "c.json"))
    assert code == CodeProfile(
        "builtin:mlp",
        Traits(
            parallel_fraction=0.3,
            max_threads=2,
            io_ms=0.0,
            init_ms=450.0,
            cpu_ms=1234.0,
            peak_memory_mb=210.0,
        ),
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ([1, 2], "must be a JSON object"),
        ({"name": "x"}, "expected a measured profile"),
        ({"memory_mb": {}}, "non-empty object"),
        ({"memory_mb": {"lots": {"p50": 1, "mem_used_mb": 1}}}, "not a whole number"),
        ({"memory_mb": {"64": {"p50": 1, "mem_used_mb": 1}}}, "outside 128..10240"),
        ({"memory_mb": {"512": {"mem_used_mb": 1}}}, "memory_mb.512: missing 'p50'"),
        ({"memory_mb": {"512": {"p50": "fast", "mem_used_mb": 1}}}, "must be a number"),
        ({"memory_mb": {"512": {"p10": 9, "p50": 5, "p90": 6, "mem_used_mb": 1}}}, "p10 <= p50"),
        ({"memory_mb": {"512": {"p10": 4, "p50": 5, "mem_used_mb": 1}}}, "both p10 and p90"),
        (
            {
                "memory_mb": {
                    "512": {"p50": 5, "mem_used_mb": 1},
                    "0512": {"p50": 6, "mem_used_mb": 1},
                }
            },
            "memory size 512 is given twice",
        ),
        ({"memory_mb": {"512": {"p50": 5, "mem_used_mb": 600}}}, "exceeds the memory size 512"),
        ({**CODE_PROFILE, "parallel_fraction": 1.5}, "parallel_fraction"),
        ({**CODE_PROFILE, "max_threads": 1.5}, "whole number"),
        ({**CODE_PROFILE, "gpu": True}, "unknown key"),
    ],
)
def test_malformed_profiles_say_what_is_wrong(
    tmp_path: Path, content: object, message: str
) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ProfileError, match=message) as caught:
        load_profile(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="no such file"):
        load_profile(tmp_path / "absent.json")


def test_the_curve_is_exact_at_measured_sizes_and_monotone_everywhere() -> None:
    for path in EXAMPLES:
        profile = load_profile(path)
        assert isinstance(profile, MeasuredProfile)
        curve = profile.curve
        for point in profile.points:
            assert curve.p50_ms(point.memory_mb) == pytest.approx(point.p50_ms), path.name
        values = np.array([curve.p50_ms(int(m)) for m in ALL_SIZES])
        assert np.all(np.diff(values) <= 1e-9), f"{path.name} is not non-increasing"
        assert np.all(values > 0)


def test_a_measured_rise_with_more_memory_is_treated_as_noise() -> None:
    profile = parse_profile(
        {
            "memory_mb": {
                "512": {"p50": 1000.0, "mem_used_mb": 100.0},
                "1024": {"p50": 520.0, "mem_used_mb": 100.0},
                "2048": {"p50": 540.0, "mem_used_mb": 100.0},  # slower than 1024: noise
            }
        }
    )
    assert isinstance(profile, MeasuredProfile)
    curve = profile.curve
    assert curve.p50_ms(2048) == pytest.approx(520.0)
    assert curve.p50_ms(1500) == pytest.approx(520.0)


def test_between_sizes_the_curve_follows_the_cpu_model_not_a_straight_line() -> None:
    # Single-threaded CPU work measured at 1024 and 4096 MB: the true curve is 1/m up to
    # 1,769 MB, then flat. Plain log-log interpolation would be 39 % off at 1,769 MB.
    true = {m: 1000.0 * 1769 / min(m, 1769) for m in (1024, 1769, 2048, 4096)}
    profile = parse_profile(
        {
            "memory_mb": {
                "512": {"p50": 1000.0 * 1769 / 512, "mem_used_mb": 90.0},
                "1024": {"p50": true[1024], "mem_used_mb": 90.0},
                "4096": {"p50": true[4096], "mem_used_mb": 90.0},
            }
        }
    )
    assert isinstance(profile, MeasuredProfile)
    for memory in (1769, 2048):
        assert profile.curve.p50_ms(memory) == pytest.approx(true[memory], rel=0.01)


def test_below_the_measured_range_duration_grows_as_one_over_memory() -> None:
    profile = parse_profile(DESIGN_PROFILE)
    assert isinstance(profile, MeasuredProfile)
    curve = profile.curve
    # The documented example profile halves exactly from 512 to 1024 MB: CPU-bound, so 1/m below.
    assert curve.p50_ms(256) == pytest.approx(2 * 1877.0, rel=0.01)
    assert curve.p50_ms(128) == pytest.approx(4 * 1877.0, rel=0.01)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_leaving_one_measured_size_out_predicts_it_within_15_percent(path: Path) -> None:
    """The fidelity criterion: from the other sizes, reproduce each size's median."""
    profile = load_profile(path)
    assert isinstance(profile, MeasuredProfile)
    for left_out in profile.points:
        rest = tuple(p for p in profile.points if p is not left_out)
        predicted = MeasuredProfile(profile.name, rest).curve.p50_ms(left_out.memory_mb)
        assert predicted == pytest.approx(left_out.p50_ms, rel=0.15), left_out.memory_mb


def test_out_of_memory_below_the_smallest_measured_footprint_only() -> None:
    profile = parse_profile(DESIGN_PROFILE)
    assert isinstance(profile, MeasuredProfile)
    curve = profile.curve
    assert curve.footprint_mb == 512.0
    assert curve.out_of_memory(511)
    assert not curve.out_of_memory(512)
    assert not curve.out_of_memory(700)
    assert curve.mem_used_mb(1024) == 592.0
    assert 512.0 < curve.mem_used_mb(768) < 592.0  # log-linear in between
    assert curve.mem_used_mb(4096) == 592.0  # the largest size's value above
    assert curve.mem_used_mb(300) == 300.0  # never more than the memory size


def test_noise_comes_from_the_measured_spread() -> None:
    profile = parse_profile(DESIGN_PROFILE)
    assert isinstance(profile, MeasuredProfile)
    curve = profile.curve
    assert curve.sigma(512) == pytest.approx(sigma_from_percentiles(1800.0, 1990.0))
    assert curve.sigma(1024) == pytest.approx(sigma_from_percentiles(900.0, 1010.0))
    between = curve.sigma(724)  # ~ the log-midpoint
    assert (
        min(curve.sigma(512), curve.sigma(1024))
        <= between
        <= max(curve.sigma(512), curve.sigma(1024))
    )
    assert curve.sigma(8192) == pytest.approx(curve.sigma(1024))
    no_spread = MeasuredProfile("x", (MeasuredPoint(1024, 100.0, 50.0),))
    assert no_spread.curve.sigma(1024) == DEFAULT_SIGMA


def test_lookups_outside_lambdas_range_are_refused() -> None:
    profile = parse_profile(DESIGN_PROFILE)
    assert isinstance(profile, MeasuredProfile)
    with pytest.raises(ValueError):
        profile.curve.p50_ms(127)
    with pytest.raises(ValueError):
        profile.curve.p50_ms(10_241)
    assert math.isfinite(profile.curve.p50_ms(10_240))
