"""Feast's own `feast init` repository on Potluck, compared with Feast 0.67 on the same data.

Feast generates the repository and its data. All of it runs: on-demand views, the request source and
the label view (template_strip.py would remove kinds of object `potluck` does not export; none are
missing today). Then, in template_compare.py (shared with benchmarks/feast_template_compare.py):
- workflow.py runs on Feast as it is and on Potluck with only its imports changed;
- the template's own test_workflow.py runs end to end on both (imports, and the `feast` command of its
  `subprocess` calls, renamed) and what it prints is compared;
- `feast serve` and `potluck serve` on the two repositories answer the same requests.
Values must agree wherever Feast is right; where Feast is known to be wrong, Potluck's answer is checked
against the documented rule instead (a `rule` check), never skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import template_compare as tc
from template_strip import LATER_KINDS, missing_kinds, strip_later_kinds, to_potluck_script

from feast_support import FEAST_VENV

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def layout(feast_python: Path, tmp_path_factory: pytest.TempPathFactory) -> tc.Layout:
    try:
        return tc.build(tmp_path_factory.mktemp("feast_init"), FEAST_VENV)
    except tc.StepFailed as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def results(layout: tc.Layout) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        return tc.run_workflows(layout, FEAST_VENV)
    except tc.StepFailed as err:
        pytest.fail(str(err))


def _assert_ok(checks: list[tc.Check]) -> None:
    failed = [c for c in checks if not c.ok]
    assert not failed, "\n" + tc.table(failed)


def test_definitions_keep_on_demand_views_and_strip_only_what_potluck_lacks(layout: tc.Layout) -> None:
    source = (layout.potluck_repo / "feature_definitions.py").read_text()
    for name in ("RequestSource", "on_demand_feature_view", "transformed_conv_rate", "transformed_conv_rate_fresh"):
        assert name in source
    assert ("driver_quality_labels" in source) == layout.labels == ("LabelView" not in missing_kinds())
    assert "from feast" not in source
    # stripping is decided by what `potluck` exports: nothing is stripped when every kind is there
    feast_source = (layout.template / "feature_definitions.py").read_text()
    assert strip_later_kinds(feast_source, ()) == feast_source
    stripped = strip_later_kinds(feast_source, LATER_KINDS)
    assert "LabelView" not in stripped
    assert "driver_quality_labels" not in stripped
    assert "transformed_conv_rate_fresh" in stripped


def test_script_rewrite_changes_only_names() -> None:
    script = 'import subprocess\nfrom feast import FeatureStore\nprint("feast apply")\nsubprocess.run(["feast", "apply"])\nrun(["feast"])\n'
    rewritten = to_potluck_script(script)
    assert "from potluck import FeatureStore" in rewritten
    assert "subprocess.run(['potluck', 'apply'])" in rewritten
    assert "print('feast apply')" in rewritten  # text is left alone
    assert "run(['feast'])" in rewritten  # only subprocess calls


@pytest.mark.parametrize("area", ["online", "historical"])
def test_workflow_values_equal_feast_or_the_rule(
    results: tuple[dict[str, Any], dict[str, Any]], layout: tc.Layout, area: str
) -> None:
    feast, potluck = results
    checks = tc.compare_workflow(feast, potluck, layout.template)
    mine = [c for c in checks if c.check.startswith(area)]
    assert len(mine) >= 8
    _assert_ok(mine)


def test_online_reads_with_request_data_equal_feast(results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    feast, potluck = results
    for key in ("online_features", "online_full_names", "online_driver_activity_v1", "online_driver_activity_v2",
                "online_driver_activity_v3", "online_after_push", "online_fresh_after_push"):  # fmt: skip
        assert tc.compare_online(key, feast[key], potluck[key]).status == "equal", key
    after = potluck["online_fresh_after_push"]
    assert after["driver_hourly_stats_fresh__conv_rate"][0] == 1.0
    assert after["transformed_conv_rate_fresh__conv_rate_plus_val1"][0] == pytest.approx(1.0 + 1000)
    assert after["transformed_conv_rate_fresh__conv_rate_plus_val2"][-1] is None  # the unknown driver


def test_training_data_keeps_every_entity_row(results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Feast's file store drops entity rows without a match; Potluck returns one row per input row."""
    feast, potluck = results
    rows = potluck["historical"]["rows"]
    assert sorted(r["label"] for r in rows) == list(range(len(rows)))
    assert len(rows) > len(feast["historical"]["rows"])
    unmatched = [r for r in rows if r["conv_rate"] is None]
    assert unmatched, "the entity rows before the data and beyond the ttl have no feature values"
    assert all(r["conv_rate_plus_val1"] is None and r["driver_profile"] is None for r in unmatched)


def test_label_view_rows_equal_feast_once_potluck_has_it(
    results: tuple[dict[str, Any], dict[str, Any]], layout: tc.Layout
) -> None:
    feast, potluck = results
    if not layout.labels:
        assert "online_labels" not in feast
        assert "online_labels" not in potluck
        return
    checks = [tc.compare_online("online_labels", feast["online_labels"], potluck["online_labels"])]
    checks.append(tc.compare_frame("historical_labels", feast["historical_labels"], potluck["historical_labels"]))
    _assert_ok(checks)
    online = potluck["online_labels"]
    assert online["is_reliable"][:2] == [0, 1]  # the later of two labels wins for driver 1001
    assert online["labeler"][:2] == ["bob", "alice"]


def test_servers_answer_alike(results: tuple[dict[str, Any], dict[str, Any]], layout: tc.Layout) -> None:
    try:
        checks = tc.compare_servers(layout, FEAST_VENV)
    except tc.StepFailed as err:
        pytest.fail(str(err))
    assert len(checks) == len(tc.server_requests(layout.labels))
    _assert_ok(checks)


def test_template_test_workflow_runs_on_both_and_prints_the_same(layout: tc.Layout) -> None:
    try:
        feast_out, potluck_out, started = tc.run_template_scripts(layout, FEAST_VENV)
    except tc.StepFailed as err:
        pytest.fail(str(err))
    assert "Applied" in potluck_out
    assert "torn down" in potluck_out
    checks = tc.compare_stdout(feast_out, potluck_out, started)
    assert len(checks) >= 7
    _assert_ok(checks)
