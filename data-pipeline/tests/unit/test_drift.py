"""drift: PSI and KS on known distributions, what each impression contributes, windows and the gauges."""

from __future__ import annotations

import argparse
import math
import random
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from pickwise_pipeline.drift import (
    NONE,
    DriftMetrics,
    DriftReport,
    SignalDrift,
    Window,
    WindowSample,
    bin_counts,
    brand_values,
    compare,
    ks,
    numeric_psi,
    parse_duration_s,
    price_band_value,
    psi,
    psi_level,
    quantile_edges,
    register,
    relative_windows,
    windows_from_args,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _normal(n: int, mean: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, 1.0) for _ in range(n)]


def _sample(brands: dict[str, int], *, scores_mean: float = 0.0, ctr: float = 0.1, seed: int = 1) -> WindowSample:
    rng = random.Random(seed)
    sample = WindowSample()
    for brand, count in brands.items():
        for _ in range(count):
            sample.add({"brands": [brand], "price_max": 20000}, [rng.gauss(scores_mean, 1.0) for _ in range(5)],
                       rng.random() < ctr)
    return sample


def test_psi_of_identical_histograms_is_zero() -> None:
    assert psi({"a": 50, "b": 30, "c": 20}, {"a": 500, "b": 300, "c": 200}) == pytest.approx(0.0, abs=1e-12)


def test_psi_of_a_known_shift_matches_the_formula() -> None:
    # shares 0.5/0.5 -> 0.8/0.2: (0.8-0.5) ln(0.8/0.5) + (0.2-0.5) ln(0.2/0.5)
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(expected)
    assert expected > 0.25


def test_psi_gives_a_bin_empty_on_one_side_epsilon_so_it_stays_finite() -> None:
    value = psi({"a": 100}, {"a": 50, "new": 50})
    assert math.isfinite(value) and value > 1.0


def test_psi_without_values_in_a_window_is_an_error() -> None:
    with pytest.raises(ValueError):
        psi({"a": 1}, {})


def test_psi_levels_use_the_usual_thresholds() -> None:
    assert [psi_level(v) for v in (0.05, 0.1, 0.2, 0.25, 0.3)] == ["stable", "moderate", "moderate", "moderate",
                                                                    "significant"]


def test_quantile_bins_split_the_reference_evenly() -> None:
    reference = [float(v) for v in range(1000)]
    edges = quantile_edges(reference, 10)
    counts = bin_counts(reference, edges)
    assert len(edges) == 9
    assert sorted(counts.values()) == [100] * 10


def test_tied_reference_values_share_one_bin() -> None:
    assert quantile_edges([1.0] * 50 + [2.0] * 50, 10) == [1.0, 1.5, 2.0]


def test_numeric_psi_of_two_samples_of_one_distribution_is_small() -> None:
    assert numeric_psi(_normal(5000, 0.0, 1), _normal(5000, 0.0, 2), 10) < 0.02


def test_numeric_psi_of_a_shifted_distribution_is_significant() -> None:
    assert numeric_psi(_normal(5000, 0.0, 1), _normal(5000, 1.0, 2), 10) > 0.25


def test_ks_tells_one_distribution_from_a_shifted_one() -> None:
    same_d, same_p = ks(_normal(2000, 0.0, 1), _normal(2000, 0.0, 2))
    shifted_d, shifted_p = ks(_normal(2000, 0.0, 1), _normal(2000, 0.5, 2))
    assert same_p > 0.01 and same_d < 0.05
    assert shifted_p < 1e-10 and shifted_d > 0.15


def test_brands_are_lower_cased_once_each_and_none_when_absent() -> None:
    assert brand_values({"brands": ["Samsung", "samsung", "Apple"]}) == ["apple", "samsung"]
    assert brand_values({"brands": []}) == [NONE]
    assert brand_values({}) == [NONE]


def test_price_band_is_the_named_band_else_the_band_of_the_price_bounds() -> None:
    assert price_band_value({"price_band": "Flagship", "price_max": 10000}) == "flagship"
    assert price_band_value({"price_bands": ["premium"]}) == "premium"
    assert price_band_value({"price_max": 20000}) == "mid"
    assert price_band_value({"price_min": 80000}) == "flagship"
    assert price_band_value({"ram_gb_min": 8}) == NONE


def test_an_interleaved_page_adds_no_ranker_scores() -> None:
    sample = WindowSample()
    sample.add({}, [0.5, 0.4], clicked=True, interleaved=True)
    sample.add({}, [0.3, None], clicked=False)
    assert sample.scores == [0.3]
    assert sample.clicks == [1, 0]
    assert sample.impressions == 2


def test_identical_windows_show_no_drift() -> None:
    mix = {"samsung": 300, "apple": 200, "xiaomi": 100}
    signals = {s.signal: s for s in compare(_sample(mix, seed=1), _sample(mix, seed=2), min_rows=100, bins=10)}
    assert signals["brand"].psi == pytest.approx(0.0, abs=1e-9)
    assert signals["ranker_score"].psi < 0.05 and signals["ranker_score"].ks_pvalue > 0.001
    assert signals["ctr"].psi < 0.1
    assert all(s.level == "stable" for s in signals.values())


def test_a_shifted_brand_mix_and_score_distribution_are_significant_drift() -> None:
    reference = _sample({"samsung": 300, "apple": 200, "xiaomi": 100}, seed=1)
    current = _sample({"samsung": 50, "apple": 50, "realme": 500}, scores_mean=1.0, ctr=0.3, seed=2)
    signals = {s.signal: s for s in compare(reference, current, min_rows=100, bins=10)}
    assert signals["brand"].psi > 0.25 and signals["brand"].level == "significant"
    assert signals["ranker_score"].psi > 0.25 and signals["ranker_score"].ks_pvalue < 1e-6
    assert signals["ctr"].ks_pvalue < 1e-6
    assert signals["price_band"].psi == pytest.approx(0.0, abs=1e-9)  # every query said "under 20k" in both


def test_too_few_rows_give_no_value_rather_than_a_false_alarm() -> None:
    reference = _sample({"samsung": 500}, seed=1)
    current = _sample({"apple": 20}, seed=2)
    signals = compare(reference, current, min_rows=100, bins=10)
    assert all(s.psi is None and s.ks_pvalue is None for s in signals)
    assert all("too few rows" in (s.note or "") for s in signals)


def test_durations_parse_and_bad_ones_are_refused() -> None:
    assert parse_duration_s("7d") == 604800 and parse_duration_s("1h") == 3600 and parse_duration_s("90s") == 90
    for bad in ("", "7", "0h", "-1h", "1y"):
        with pytest.raises(ValueError):
            parse_duration_s(bad)


def test_relative_windows_are_adjacent_and_end_now() -> None:
    reference, current = relative_windows(NOW, 7 * 86400, 3600)
    assert current == Window(NOW - timedelta(hours=1), NOW)
    assert reference == Window(NOW - timedelta(hours=1) - timedelta(days=7), NOW - timedelta(hours=1))


def _args(**kw: str | None) -> argparse.Namespace:
    base = {"reference": "7d", "current": "1h", "reference_from": None, "reference_to": None,
            "current_from": None, "current_to": None}
    return argparse.Namespace(**(base | kw))


def test_explicit_bounds_win_over_durations_and_current_to_defaults_to_now() -> None:
    reference, current = windows_from_args(_args(reference_from="2026-11-01", reference_to="2026-11-08",
                                                 current_from="2026-11-30T00:00:00+00:00"), NOW)
    assert reference == Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 8, tzinfo=UTC))
    assert current == Window(datetime(2026, 11, 30, tzinfo=UTC), NOW)


@pytest.mark.parametrize(("kw", "flag"), [
    ({"reference": "soon"}, "--reference"),
    ({"current": "0m"}, "--current"),
    ({"reference_from": "2026-11-01"}, "--reference-to"),
    ({"reference_from": "yesterday", "reference_to": "2026-11-08", "current_from": "2026-11-30"}, "--reference-from"),
    ({"reference_from": "2026-11-08", "reference_to": "2026-11-01", "current_from": "2026-11-30"}, "--reference-to"),
])
def test_bad_window_arguments_name_the_flag(kw: dict[str, str], flag: str) -> None:
    with pytest.raises(ValueError, match=f"^{flag}:"):
        windows_from_args(_args(**kw), NOW)


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_metrics_export_values_and_drop_a_signal_that_lost_its_rows() -> None:
    registry = CollectorRegistry()
    metrics = DriftMetrics(registry)
    window = Window(NOW - timedelta(hours=1), NOW)
    full = DriftReport(window, window, 900, 300, [
        SignalDrift("brand", 900, 300, psi=0.4, level="significant"),
        SignalDrift("ranker_score", 900, 300, psi=0.05, level="stable", ks_statistic=0.04, ks_pvalue=0.6)])
    metrics.publish(full, finished_at_s=1234.0)
    assert _value(registry, "pickwise_drift_psi", signal="brand") == 0.4
    assert _value(registry, "pickwise_drift_ks_pvalue", signal="ranker_score") == 0.6
    assert _value(registry, "pickwise_drift_ks_pvalue", signal="brand") is None
    assert _value(registry, "pickwise_drift_window_rows", window="current") == 300
    assert _value(registry, "pickwise_drift_last_run_timestamp_seconds") == 1234.0

    thin = DriftReport(window, window, 900, 10, [SignalDrift("brand", 900, 10, note="too few rows"),
                                                 SignalDrift("ranker_score", 900, 10, note="too few rows")])
    metrics.publish(thin, finished_at_s=1300.0)
    assert _value(registry, "pickwise_drift_psi", signal="brand") is None
    assert _value(registry, "pickwise_drift_ks_statistic", signal="ranker_score") is None
    assert _value(registry, "pickwise_drift_window_rows", window="current") == 10
    assert _value(registry, "pickwise_drift_last_run_timestamp_seconds") == 1300.0


def _command(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["drift", *argv])


@pytest.mark.parametrize(("argv", "flag"), [
    (("--bins", "1"), "--bins"),
    (("--min-rows", "0"), "--min-rows"),
    (("--top-k", "0"), "--top-k"),
    (("--current", "tomorrow"), "--current"),
])
def test_the_command_refuses_bad_flags_before_touching_postgres(argv, flag, capsys) -> None:
    args = _command(*argv)
    assert args.func(args) == 2
    assert capsys.readouterr().err.startswith(f"{flag}:")
