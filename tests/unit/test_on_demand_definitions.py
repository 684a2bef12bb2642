"""On-demand feature view and request source definitions: validation, specs, apply, plan and CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import potluck
from odfv_support import FEATURES, build
from potluck import FeatureService, FeatureStore, FeatureView, Field, FileSource, OnDemandFeatureView, RequestSource
from potluck.definitions.errors import DefinitionError, RepositoryError
from potluck.types import Float64, Int64
from tests_support import run_cli

REQ = RequestSource(name="req", schema=[Field(name="x", dtype=Int64)])
VIEW = FeatureView(
    name="v",
    source=FileSource(path="data/v.parquet", timestamp_field="ts"),
    schema=[Field(name="a", dtype=Int64), Field(name="b", dtype=Int64)],
)


def double(inputs: dict[str, list[int]]) -> dict[str, list[int]]:
    return {"y": [v * 2 for v in inputs["x"]]}


def test_the_feast_import_paths_export_the_definitions() -> None:
    import potluck.data_source
    from potluck.on_demand_feature_view import OnDemandFeatureView as Imported
    from potluck.on_demand_feature_view import on_demand_feature_view as decorator

    assert potluck.data_source.RequestSource is RequestSource
    assert Imported is OnDemandFeatureView
    # as in Feast, importing the module keeps `potluck.on_demand_feature_view` the decorator
    assert potluck.on_demand_feature_view is decorator
    assert sys.modules["potluck.on_demand_feature_view"].OnDemandFeatureView is OnDemandFeatureView


def test_the_decorator_names_the_view_after_its_function_and_locates_it() -> None:
    view = potluck.on_demand_feature_view(sources=[VIEW[["a"]], REQ], schema=[Field(name="y", dtype=Int64)])(double)
    assert isinstance(view, OnDemandFeatureView)
    assert view.name == "double"
    assert view.mode == "pandas"
    spec = view.to_spec()
    assert spec["udf"]["module"] == double.__module__
    assert spec["udf"]["qualname"] == "double"
    assert len(spec["udf"]["source_sha256"]) == 64
    assert spec["sources"][0]["features"][0]["name"] == "a"
    again = OnDemandFeatureView.from_spec(json.loads(json.dumps(spec)))
    assert again == view
    assert again.udf is None
    assert view[["y"]].projection.features == [Field(name="y", dtype=Int64)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "spark"}, "'mode' must be one of pandas, python, arrow"),
        ({"mode": "pandas", "singleton": True}, "singleton=True' needs mode='python'"),
        ({"sources": []}, "'sources' must be a non-empty list"),
        ({"sources": ["v"]}, r"'sources\[0\]' must be a FeatureView"),
        ({"schema": [Field(name="x", dtype=Int64)]}, "output 'x' is also a request field"),
        ({"udf": None}, "'udf' is required"),
        ({"udf": lambda d: d}, "must be defined with 'def' at the top level"),
    ],
)
def test_invalid_on_demand_views_are_refused_naming_the_problem(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "name": "odfv",
        "sources": [VIEW, REQ],
        "schema": [Field(name="y", dtype=Int64)],
        "udf": double,
        "mode": "python",
    }
    args.update(kwargs)
    with pytest.raises(DefinitionError, match=message):
        OnDemandFeatureView(**args)  # type: ignore[arg-type]


def test_request_sources_need_fields() -> None:
    with pytest.raises(DefinitionError, match="RequestSource 'r': 'schema' must be a non-empty list"):
        RequestSource(name="r", schema=[])


def test_feature_services_take_on_demand_views_and_their_selections() -> None:
    odfv = OnDemandFeatureView(
        name="o", sources=[VIEW, REQ], schema=[Field(name="y", dtype=Int64), Field(name="z", dtype=Float64)], udf=double
    )
    service = FeatureService(name="s", features=[VIEW[["a"]], odfv[["z"]]])
    assert service.feature_references() == ["v:a", "o:z"]


def test_apply_registers_them_and_the_cli_lists_and_dumps_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = build(tmp_path)
    store = FeatureStore(repo_path=root)
    store.apply()
    snapshot = store.registry_snapshot()
    odfv = snapshot.get(OnDemandFeatureView.kind, "scored_python")
    assert isinstance(odfv, OnDemandFeatureView)
    assert odfv.udf_location.module == "features"
    assert odfv.udf_location.qualname == "scored_python"
    assert [f.dtype for f in odfv.source_projections[0].features] == [Float64, potluck.types.String]
    assert isinstance(snapshot.get("data_source", "req"), RequestSource)
    store.close()
    monkeypatch.chdir(root)
    code, out, _ = run_cli(capsys, "on-demand-feature-views", "list")
    assert code == 0
    assert "scored_arrow" in out
    assert "features.py:scored_pandas" in out
    code, out, _ = run_cli(capsys, "on-demand-feature-views", "describe", "scored_single", "--output", "json")
    assert code == 0
    assert json.loads(out)["singleton"] is True
    code, out, _ = run_cli(capsys, "registry", "dump")
    dumped = json.loads(out)["objects"]["on_demand_feature_view"]
    assert sorted(o["name"] for o in dumped) == ["scored_arrow", "scored_pandas", "scored_python", "scored_single"]


def test_a_changed_function_body_is_a_change_the_plan_shows(tmp_path: Path) -> None:
    root = build(tmp_path)
    store = FeatureStore(repo_path=root)
    store.apply()
    assert not store.plan().has_changes
    (root / "features.py").write_text(FEATURES.replace("c * 2 + b", "c * 3 + b"))
    plan = store.plan()
    changed = [d for d in plan.diffs if d.action == "updated"]
    assert [(d.kind, d.name) for d in changed] == [("on_demand_feature_view", "scored_python")]
    assert [c.path for c in changed[0].changes] == ["udf.source_sha256"]
    store.close()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('sources=[stats[["conv", "city"]], req], schema=OUT, mode="arrow")',
         'sources=[req], schema=OUT, mode="arrow", write_to_online_store=True)',
         "OnDemandFeatureView 'scored_arrow': write_to_online_store=True needs the keys of its stored rows"),
        ('stats[["conv", "city"]], req], schema=OUT, mode="arrow"', 'stats[["conv"]], req], schema=OUT, mode="arrow"',
         None),
        ("@on_demand_feature_view(sources=[stats[[\"conv\", \"city\"]], req], schema=OUT, mode=\"pandas\")",
         "@on_demand_feature_view(sources=[FeatureView(name='gone', source=stats.source, schema=[Field(name='conv', "
         "dtype=Float64)])[['conv']], req], schema=OUT, mode=\"pandas\")",
         "uses feature view 'gone' as a source, which is not defined"),
    ],
)  # fmt: skip
def test_apply_refuses_what_cannot_be_served(tmp_path: Path, old: str, new: str, message: str | None) -> None:
    assert old in FEATURES
    root = build(tmp_path, FEATURES.replace(old, new))
    store = FeatureStore(repo_path=root)
    if message is None:
        store.apply()  # a narrower selection is fine
    else:
        with pytest.raises(RepositoryError, match=message):
            store.apply()
    store.close()


def test_a_view_that_on_demand_views_read_is_not_deleted(tmp_path: Path) -> None:
    root = build(tmp_path)
    store = FeatureStore(repo_path=root)
    store.apply()
    with pytest.raises(DefinitionError, match=r"'stats' is used by .*'scored_pandas'"):
        store.delete_feature_view("stats")
    assert [v.name for v in store.list_on_demand_feature_views()] == [
        "scored_arrow",
        "scored_pandas",
        "scored_python",
        "scored_single",
    ]
    assert store.get_on_demand_feature_view("scored_single").singleton
    assert [v.name for v in store.list_all_feature_views()] == [
        "stats",
        "scored_arrow",
        "scored_pandas",
        "scored_python",
        "scored_single",
    ]
    store.close()
