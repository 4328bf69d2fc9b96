"""The performance model against its documented formulas (service/platform/emulator/model.py)."""

from __future__ import annotations

import math

import pytest

from service.platform.emulator.model import (
    MB_PER_VCPU,
    cpu_factor,
    duration_ms,
    fit_cpu_model,
    noise_factor,
    sigma_from_percentiles,
    vcpus,
)


def test_one_vcpu_per_1769_mb_capped_at_six() -> None:
    assert vcpus(1769) == 1.0
    assert vcpus(884.5) == 0.5
    assert vcpus(3538) == 2.0
    assert vcpus(10_240) == pytest.approx(10_240 / 1769)  # the cap of 6 never binds in range
    assert vcpus(20_000) == 6.0
    with pytest.raises(ValueError):
        vcpus(0)


def test_below_one_vcpu_everything_scales_as_one_over_memory() -> None:
    for p, threads in [(0.0, 1), (0.5, 4), (1.0, 6)]:
        assert cpu_factor(512, p, threads) == pytest.approx(1769 / 512)
        assert duration_ms(100.0, 0.0, 512, p, threads) == pytest.approx(100 * 1769 / 512)


def test_above_one_vcpu_only_the_parallel_part_speeds_up_up_to_its_threads() -> None:
    # serial: flat above 1 vCPU
    assert duration_ms(1000.0, 0.0, 4 * MB_PER_VCPU, 0.0, 1) == pytest.approx(1000.0)
    # Amdahl: (1-p) + p/min(v, T)
    assert duration_ms(1000.0, 0.0, 4 * MB_PER_VCPU, 0.6, 8) == pytest.approx(400 + 600 / 4)
    assert duration_ms(1000.0, 0.0, 4 * MB_PER_VCPU, 0.6, 2) == pytest.approx(400 + 600 / 2)


def test_io_does_not_scale_with_memory() -> None:
    assert duration_ms(0.0, 250.0, 128) == 250.0
    assert duration_ms(0.0, 250.0, 10_240) == 250.0
    assert duration_ms(100.0, 250.0, 1769) == pytest.approx(350.0)


def test_sigma_puts_p10_and_p90_at_their_lognormal_quantiles() -> None:
    sigma = sigma_from_percentiles(900.0, 1100.0)
    assert sigma == pytest.approx(math.log(1100 / 900) / (2 * 1.2816), rel=1e-4)
    median = math.sqrt(900 * 1100)
    assert median * noise_factor(-1.2815515655, sigma) == pytest.approx(900.0)
    assert median * noise_factor(1.2815515655, sigma) == pytest.approx(1100.0)
    assert noise_factor(0.0, sigma) == 1.0  # the noise has median 1
    with pytest.raises(ValueError):
        sigma_from_percentiles(1100.0, 900.0)


def test_fit_recovers_the_model_from_exact_points() -> None:
    true = {"cpu_ms": 2000.0, "io_ms": 100.0, "parallel_fraction": 0.5, "max_threads": 2}
    sizes = [512, 1024, 1769, 3538, 5308, 8000]
    points = [(m, duration_ms(true["cpu_ms"], true["io_ms"], m, 0.5, 2)) for m in sizes]
    model = fit_cpu_model(points)
    assert model.parallel_fraction == pytest.approx(0.5)
    assert model.max_threads == 2
    assert model.io_ms == pytest.approx(100.0, abs=1e-6)
    assert model.cpu_ms == pytest.approx(2000.0)
    for m in (128, 2500, 10_240):
        assert model.duration_ms(m) == pytest.approx(duration_ms(2000.0, 100.0, m, 0.5, 2))


def test_fit_from_points_below_one_vcpu_extrapolates_single_threaded() -> None:
    model = fit_cpu_model([(512, 3455.0), (1024, 1727.5)])
    assert model.parallel_fraction == 0.0
    assert model.duration_ms(4096) == pytest.approx(model.duration_ms(1769))
    assert model.duration_ms(256) == pytest.approx(2 * 3455.0, rel=1e-6)


def test_fit_of_a_single_point_is_cpu_bound_and_io_bound_data_stays_flat() -> None:
    single = fit_cpu_model([(1024, 500.0)])
    assert single.duration_ms(512) == pytest.approx(1000.0)
    flat = fit_cpu_model([(128, 800.0), (1024, 800.0)])
    assert flat.duration_ms(256) == pytest.approx(800.0)
    assert flat.duration_ms(10_240) == pytest.approx(800.0)
    with pytest.raises(ValueError):
        fit_cpu_model([])
