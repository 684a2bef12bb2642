"""Staleness limits and statuses, and the node-exporter textfile of a monitor run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from monitor_ops_support import NOW, build_repo
from potluck import FeatureStore
from potluck.definitions.errors import DefinitionError
from potluck.materialize.watermark import ViewFreshness
from potluck.monitoring.freshness import FreshnessConfig, check, check_views, limit_of
from potluck.monitoring.ops import after_checks, drift_alerts

limits = st.one_of(st.none(), st.integers(1, 10**6))
ages = st.one_of(st.none(), st.integers(0, 2 * 10**6))


def _text(seconds: int | None) -> str:
    return "none" if seconds is None else f"{seconds}s"


@given(
    tag=st.one_of(st.just("absent"), limits),
    view_setting=st.one_of(st.just("absent"), limits),
    run=st.one_of(st.none(), st.integers(1, 10**6)),
    default=limits,
    age=ages,
)
def test_status_against_the_most_specific_limit(
    tag: int | str | None, view_setting: int | str | None, run: int | None, default: int | None, age: int | None
) -> None:
    tags = {} if tag == "absent" else {"potluck.max_staleness": _text(tag)}  # type: ignore[arg-type]
    views = {} if view_setting == "absent" else {"v": _text(view_setting)}  # type: ignore[arg-type]
    config = FreshnessConfig(max_staleness=None if default is None else f"{default}s", views=views)
    # the reference: the first level that says anything decides
    levels = [tag, view_setting, "absent" if run is None else run, "absent" if default is None else default]
    limit = next((lvl for lvl in levels if lvl != "absent"), None)
    fresh = ViewFreshness("v", None, None, None, None if age is None else timedelta(seconds=age))
    (result,) = check([fresh], {"v": tags}, None if run is None else timedelta(seconds=run), config)
    if limit is None:
        assert result.status == "unchecked"
    elif age is None:
        assert result.status == "never"
    else:
        assert result.status == ("stale" if age > limit else "ok")  # type: ignore[operator]
    assert result.stale == (result.status in ("stale", "never"))


def test_bad_limits_name_where() -> None:
    with pytest.raises(DefinitionError, match=r"feature view 'users': tag 'potluck.max_staleness': '5 hours'"):
        limit_of("users", {"potluck.max_staleness": "5 hours"}, None, FreshnessConfig())
    with pytest.raises(ValueError, match=r"view 'clicks': '0s' is not above zero"):
        FreshnessConfig(views={"clicks": "0s"})
    with pytest.raises(ValueError, match="max_staleness"):
        FreshnessConfig(max_staleness="soon")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> FeatureStore:
    root = build_repo(tmp_path_factory.mktemp("fresh") / "repo")
    s = FeatureStore(repo_path=root)
    s.apply()
    s.materialize(NOW - timedelta(days=30), NOW - timedelta(days=3), ["users"])
    s.materialize(NOW - timedelta(days=30), NOW - timedelta(hours=2), ["orders"])
    yield s  # type: ignore[misc]
    s.close()


def test_views_of_a_repository(store: FeatureStore) -> None:
    by_view = {s.view: s for s in check_views(store, None, timedelta(hours=1), FreshnessConfig())}
    assert (by_view["users"].status, by_view["users"].limit_from) == ("stale", "tag potluck.max_staleness")
    assert by_view["orders"].status == "stale"  # 2h old, the run's limit 1h
    assert by_view["orders"].limit_from == "--max-staleness"
    assert by_view["clicks"].status == "unchecked"  # tag: none
    # NOW is fixed when the tests are collected; the age keeps growing with the time the run has taken since.
    since_now = (datetime.now(UTC) - NOW).total_seconds()
    assert 3 * 86400 <= by_view["users"].age.total_seconds() < 3 * 86400 + since_now + 60  # type: ignore[union-attr]
    relaxed = {s.view: s.status for s in check_views(store, ["orders"], timedelta(hours=3), FreshnessConfig())}
    assert relaxed == {"orders": "ok"}


FEATURES = [
    {"view": "users", "feature": "age", "kind": "numeric", "drift": True, "psi": 0.5, "ks_statistic": 0.3,
     "ks_p_value": 0.0, "js_distance": 0.2, "chi2_p_value": None, "mean_change": 0.4, "null_rate_change": 0.0,
     "max_ratio": 1.1, "rules_fired": ["psi", "mean_change"]},
    {"view": "users", "feature": "city", "kind": "categorical", "drift": False, "psi": 0.01, "ks_statistic": None,
     "ks_p_value": None, "js_distance": None, "chi2_p_value": 0.7, "mean_change": None, "null_rate_change": 0.0,
     "max_ratio": None, "rules_fired": []},
]  # fmt: skip


def test_drift_alerts_one_per_rule() -> None:
    alerts = drift_alerts("p", FEATURES)
    assert [(a.view, a.feature, a.rule) for a in alerts] == [("users", "age", "psi"), ("users", "age", "mean_change")]
    assert alerts[0].summary == "users:age drifted: psi = 0.5"
    assert alerts[0].details["ks_statistic"] == 0.3
    assert "chi2_p_value" not in alerts[0].details


def _samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_textfile_holds_every_result(store: FeatureStore, tmp_path: Path) -> None:
    path = tmp_path / "potluck.prom"
    result = after_checks(
        store, features=FEATURES, drift_views=["users"], freshness_views=None, max_staleness=timedelta(hours=1),
        textfile=str(path), now=NOW,
    )  # fmt: skip
    assert result.stale_views == ["orders", "users"]
    assert result.exit_code(drift=True) == 1
    got = _samples(path)
    assert got[("potluck_feature_drift", (("feature", "age"), ("view", "users")))] == 1
    assert got[("potluck_feature_drift", (("feature", "city"), ("view", "users")))] == 0
    assert got[("potluck_feature_drift_psi", (("feature", "age"), ("view", "users")))] == 0.5
    assert ("potluck_feature_drift_ks_statistic", (("feature", "city"), ("view", "users"))) not in got
    assert got[("potluck_feature_max_staleness_seconds", (("view", "users"),))] == 3600
    assert got[("potluck_feature_max_staleness_seconds", (("view", "orders"),))] == 3600
    assert got[("potluck_feature_view_stale", (("view", "orders"),))] == 1
    assert ("potluck_feature_view_stale", (("view", "clicks"),)) not in got  # unchecked
    assert 2 * 3600 <= got[("potluck_feature_freshness_seconds", (("view", "orders"),))] < 3 * 3600
    assert got[("potluck_monitor_last_run_timestamp_seconds", ())] == NOW.timestamp()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["potluck.prom"]  # no temporary file left
    # the feature server reads the same results back from the registry
    drift, checked = store._monitor_state.drift_results()
    assert [(d.view, d.feature, d.drift, d.psi) for d in drift] == [
        ("users", "age", True, 0.5),
        ("users", "city", False, 0.01),
    ]
    assert checked == {"users": NOW}


def test_textfile_readers_never_see_half_a_file(store: FeatureStore, tmp_path: Path) -> None:
    path = tmp_path / "potluck.prom"
    many = [{**FEATURES[0], "feature": f"f{i}"} for i in range(300)]
    after_checks(store, features=many, drift_views=[], freshness_views=None, max_staleness=None, textfile=str(path))
    complete = path.read_text()
    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                after_checks(store, features=many, drift_views=[], freshness_views=None, max_staleness=None,
                             textfile=str(path), now=NOW)  # fmt: skip
        except BaseException as err:
            errors.append(err)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        for _ in range(200):
            text = path.read_text()
            assert len(text.splitlines()) == len(complete.splitlines())
            assert text.endswith("\n")
    finally:
        stop.set()
        for w in writers:
            w.join(30)
    assert not errors
