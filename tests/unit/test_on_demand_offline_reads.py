"""Training data with on-demand views joins each feature view once, its hidden inputs included."""

from __future__ import annotations

from potluck import FeatureView, Field, FileSource
from potluck.retrieval.on_demand import ResolvedRequest, input_column
from potluck.retrieval.references import ViewSelection
from potluck.types import Float64, Int64


def _view(name: str) -> FeatureView:
    return FeatureView(
        name=name,
        entities=[],
        schema=[Field(name="x", dtype=Int64), Field(name="y", dtype=Float64), Field(name="z", dtype=Float64)],
        source=FileSource(name=f"{name}_source", path="unused.parquet", timestamp_field="ts"),
    )


def _fields(view: FeatureView, *names: str) -> tuple[Field, ...]:
    return tuple(f for n in names for f in view.features if f.name == n)


def _hidden(view: FeatureView, *names: str) -> ViewSelection:
    return ViewSelection(view, _fields(view, *names), tuple(input_column(view.name, n) for n in names))


def test_hidden_inputs_join_with_the_regular_selection_of_their_view() -> None:
    a, b, c = _view("a"), _view("b"), _view("c")
    regular = [ViewSelection(a, _fields(a, "x", "y"), ("x", "a_y")), ViewSelection(b, _fields(b, "z"), ("z",))]
    inputs = [_hidden(a, "y", "z"), _hidden(b, "z"), _hidden(c, "x")]
    reads, reused = ResolvedRequest(regular, inputs).offline_reads
    assert [r.view.name for r in reads] == ["a", "b", "c"]  # each view once, the regular ones first
    assert reads[0].output_names == ("x", "a_y", input_column("a", "z"))
    assert reads[1] == regular[1]
    assert reads[2] == inputs[2]
    assert reused == {input_column("a", "y"): "a_y", input_column("b", "z"): "z"}


def test_another_version_of_a_view_is_its_own_join() -> None:
    a, older = _view("a"), _view("a")  # equal definitions, distinct objects: as two versions are
    regular = [ViewSelection(a, _fields(a, "x"), ("x",))]
    reads, reused = ResolvedRequest(regular, [_hidden(older, "x")]).offline_reads
    assert [r.view for r in reads] == [a, older]
    assert reads[1].view is older
    assert reused == {}


def test_without_on_demand_views_the_reads_are_the_selections() -> None:
    a = _view("a")
    regular = [ViewSelection(a, _fields(a, "x"), ("x",))]
    assert ResolvedRequest(regular).offline_reads == (regular, {})
