"""Drift metrics equal plain numpy/scipy; shifted features are flagged, unshifted ones are not."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from monitoring_support import SHIFTED, STABLE, START, WEEK, write_repo

from potluck import FeatureStore
from potluck.monitoring.config import Thresholds
from potluck.monitoring.drift import check_drift, chi2_p_value, js_distance, psi

END_OF_WEEK = START + WEEK - timedelta(microseconds=1)


def _psi_reference(e: np.ndarray, a: np.ndarray) -> float:
    e, a = e / e.sum(), a / a.sum()
    e, a = np.where(e == 0, 0.0001, e), np.where(a == 0, 0.0001, a)
    return float(np.sum((a - e) * np.log(a / e)))


def _js_reference(e: np.ndarray, a: np.ndarray) -> float:
    p, q = e / e.sum(), a / a.sum()
    m = (p + q) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> float:
        keep = x > 0
        return float(np.sum(x[keep] * np.log2(x[keep] / y[keep])))

    return float(np.sqrt(max(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0)))


counts = st.lists(st.integers(0, 10_000), min_size=2, max_size=12)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_psi_and_js_equal_the_reference(expected: list[int], actual: list[int]) -> None:
    size = min(len(expected), len(actual))
    e, a = np.array(expected[:size], float), np.array(actual[:size], float)
    if e.sum() == 0 or a.sum() == 0:
        return
    assert psi(e.tolist(), a.tolist()) == pytest.approx(_psi_reference(e, a), rel=1e-9, abs=1e-12)
    assert js_distance(e.tolist(), a.tolist()) == pytest.approx(_js_reference(e, a), rel=1e-6, abs=1e-7)


def test_chi2_equals_scipy_contingency() -> None:
    e, a = [500, 300, 200, 0], [450, 350, 150, 50]
    expected = scipy.stats.chi2_contingency([e, a], correction=False).pvalue
    assert chi2_p_value(e, a) == pytest.approx(expected)
    assert chi2_p_value([0, 0], [1, 2]) is None


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    root = write_repo(tmp_path_factory.mktemp("drift"))
    fs = FeatureStore(repo_path=root)
    fs.apply()
    yield fs
    fs.close()


@pytest.fixture(scope="module")
def baseline(store: FeatureStore) -> str:
    store.set_baseline("week1", store.compute_statistics("txn", START, END_OF_WEEK))
    return "week1"


def test_shifted_features_drift_and_stable_ones_do_not(store: FeatureStore, baseline: str) -> None:
    current = store.compute_statistics("txn", START + WEEK, START + 2 * WEEK, baseline=baseline)
    report = store.check_drift(baseline, current)
    fired = {f.feature: set(f.rules_fired) for f in report.features}
    for feature, rules in SHIFTED.items():
        assert rules <= fired[feature], (feature, fired[feature])
    for feature in STABLE:
        assert fired[feature] == set(), (feature, fired[feature])
    assert report.drift
    assert {f.feature for f in report.drifted} == set(SHIFTED)


def test_metrics_equal_scipy_on_the_profiles(store: FeatureStore, baseline: str) -> None:
    base = store.get_baseline(baseline)
    current = store.compute_statistics("txn", START + WEEK, START + 2 * WEEK, baseline=baseline)
    report = store.check_drift(base, current)
    for d in report.features:
        b, c = base.feature(d.feature), current.feature(d.feature)
        if d.kind in ("numeric", "array"):
            ks = scipy.stats.ks_2samp(b.sample, c.sample)
            assert (d.ks_statistic, d.ks_p_value) == (pytest.approx(ks.statistic), pytest.approx(ks.pvalue))
            e, a = np.array(b.histogram, float), np.array(c.histogram, float)
            assert d.psi == pytest.approx(_psi_reference(e, a))
            assert d.js_distance == pytest.approx(_js_reference(e, a), abs=1e-7)
            assert d.mean_change == pytest.approx(abs(c.mean - b.mean) / max(abs(b.mean), b.stddev))
            assert d.max_ratio == pytest.approx(c.max / b.max)
        assert d.null_rate_change == pytest.approx(c.null_rate - b.null_rate)
    channel = next(d for d in report.features if d.feature == "channel")
    assert channel.unseen_share == pytest.approx(dict(current.feature("channel").top)["voice"] / 20_000)


def test_same_data_has_no_drift_under_any_seed(store: FeatureStore, baseline: str) -> None:
    current = store.compute_statistics("txn", START, END_OF_WEEK, baseline=baseline)
    report = store.check_drift(baseline, current)
    assert not report.drift
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in report.features if f.psi is not None)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fresh_unshifted_data_is_not_flagged(tmp_path: Path, seed: int) -> None:
    """Two independent draws of the unshifted distribution (the repository's first week under another seed)."""
    other = write_repo(tmp_path / "other", seed=seed)
    fs = FeatureStore(repo_path=other)
    try:
        fs.apply()
        base = fs.compute_statistics("txn", START, START + timedelta(days=3, microseconds=-1))
        current = fs.compute_statistics("txn", START + timedelta(days=3), END_OF_WEEK, baseline=base)
        report = fs.check_drift(base, current)
        assert report.drifted == []
    finally:
        fs.close()


def test_thresholds_from_yaml_and_tags(tmp_path: Path) -> None:
    yaml = "monitoring:\n  thresholds:\n    mean_change: 0.5\n  views:\n    txn:\n      features:\n        nulls:\n          null_rate_change: null\n"
    root = write_repo(tmp_path / "t", extra_yaml=yaml)
    fs = FeatureStore(repo_path=root)
    try:
        fs.apply()
        base = fs.compute_statistics("txn", START, END_OF_WEEK)
        current = fs.compute_statistics("txn", START + WEEK, START + 2 * WEEK, baseline=base)
        fired = {f.feature: f.rules_fired for f in fs.check_drift(base, current).features}
        assert "mean_change" not in fired["mean_shift"]  # 0.4 < 0.5
        assert fired["nulls"] == []  # turned off for this feature
        assert "js_distance" not in {r for rules in fired.values() for r in rules}  # the view's tag
    finally:
        fs.close()


def test_equal_width_option_flags_the_mean_shift(store: FeatureStore, baseline: str) -> None:
    base = store.get_baseline(baseline)
    current = store.compute_statistics("txn", START + WEEK, START + 2 * WEEK)  # made without the baseline
    quantile = check_drift(base, current, Thresholds())
    equal = check_drift(base, current, Thresholds(), psi_bins="equal_width")
    for report in (quantile, equal):
        by = {f.feature: f for f in report.features}
        assert "psi" in by["mean_shift"].rules_fired
        assert by["stable"].rules_fired == []


def _table_profile(values: np.ndarray, baseline: object = None) -> object:
    import duckdb
    import pyarrow as pa

    from potluck.monitoring.statistics import Column, Settings, profile_rows
    from potluck.offline.sql import Sql

    con = duckdb.connect()
    try:
        con.register("t", pa.table({"x": values}))
        return profile_rows(
            con,
            Sql('"t"'),
            [Column("x", "v", "DOUBLE")],
            source="t",
            settings=Settings(),
            row_count=len(values),
            baseline=baseline,  # type: ignore[arg-type]
        )
    finally:
        con.close()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.5, 5.0), st.floats(-100, 100))
def test_a_shift_of_half_a_stddev_or_more_is_flagged_and_none_is_not(seed: int, shift: float, center: float) -> None:
    rng = np.random.default_rng(seed)
    scale = 1 + abs(center) / 10
    base = _table_profile(rng.normal(center, scale, 20_000))
    same = check_drift(base, _table_profile(rng.normal(center, scale, 20_000), base))  # type: ignore[arg-type]
    moved = check_drift(base, _table_profile(rng.normal(center + shift * scale, scale, 20_000), base))  # type: ignore[arg-type]
    assert same.features[0].rules_fired == []
    assert {"psi", "ks"} & set(moved.features[0].rules_fired)
