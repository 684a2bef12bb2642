"""`Aggregation`: one windowed aggregate of a column, declared on a stream or batch feature view.

The declaration only; the rule (valid functions, hops, output names and types) lives in
`potluck.aggregation.rule`, and is checked when a view is built, with errors naming the view.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from potluck.aggregation import rule
from potluck.definitions.base import check_column
from potluck.definitions.errors import DefinitionError, suggestion
from potluck.definitions.field import Field
from potluck.definitions.types import PRIMITIVES, PotluckType


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def _delta(value: object) -> timedelta | None:
    return None if value is None else timedelta(seconds=float(value))  # type: ignore[arg-type]


class Aggregation:
    """`Aggregation(column=, function=, time_window=None, slide_interval=None, name=None)`, as in Feast.

    `slide_interval` (the hop) defaults to the rule's default for the window, not to the window
    itself as in Feast; `time_window=None` is a lifetime window.
    """

    __slots__ = ("column", "function", "name", "slide_interval", "time_window")

    def __init__(
        self,
        column: str = "",
        function: str = "",
        time_window: timedelta | None = None,
        slide_interval: timedelta | None = None,
        name: str | None = None,
    ) -> None:
        for what, value in (("time_window", time_window), ("slide_interval", slide_interval)):
            if value is not None and not isinstance(value, timedelta):
                raise DefinitionError(
                    f"Aggregation of {column!r}: '{what}' must be a datetime.timedelta, got {value!r}"
                )
        if not isinstance(function, str):
            raise DefinitionError(f"Aggregation of {column!r}: 'function' must be a string, got {function!r}")
        if name is not None and not isinstance(name, str):
            raise DefinitionError(f"Aggregation of {column!r}: 'name' must be a string, got {name!r}")
        self.column = column if isinstance(column, str) else str(column)
        self.function = function
        self.time_window = time_window
        self.slide_interval = slide_interval
        self.name = name or ""

    @property
    def canonical_function(self) -> str:
        return rule.canonical_function(self.function)

    @property
    def hop(self) -> timedelta | None:
        """The hop in force (None for a lifetime window)."""
        return rule.effective_hop(self.time_window, self.slide_interval)

    @property
    def output_name(self) -> str:
        return rule.output_name(self)

    def resolved_name(self, time_window: timedelta | None = None) -> str:
        """Feast's spelling of `output_name`."""
        return self.output_name

    def to_spec(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "function": self.function,
            "time_window_seconds": _seconds(self.time_window),
            "slide_interval_seconds": _seconds(self.slide_interval),
            "name": self.name,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Aggregation:
        return cls(
            column=spec["column"],
            function=spec["function"],
            time_window=_delta(spec.get("time_window_seconds")),
            slide_interval=_delta(spec.get("slide_interval_seconds")),
            name=spec.get("name") or None,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Aggregation) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash((self.column, self.function, self.time_window, self.slide_interval, self.name))

    def __repr__(self) -> str:
        window = "lifetime" if self.time_window is None else str(self.time_window)
        return f"Aggregation({self.function}({self.column}) over {window} -> {self.output_name!r})"


def check_aggregations(
    label: str, aggregations: object, inputs: Sequence[Field], view_hop: timedelta | None = None
) -> tuple[list[Aggregation], list[Field]]:
    """Validate a view's aggregations against its schema; return them with their output fields.

    Hops: an aggregation's `slide_interval`, else the view's `view_hop` (Feast's `tiling_hop_size`)
    when it divides the window, else the rule's default. Every error names the view and what to change.
    """
    if aggregations is None:
        return [], []
    if isinstance(aggregations, (str, bytes)) or not isinstance(aggregations, Sequence):
        raise DefinitionError(f"{label}: 'aggregations' must be a list of Aggregation objects")
    by_name = {f.name: f for f in inputs}
    aggs: list[Aggregation] = []
    outputs: list[Field] = []
    for i, declared in enumerate(aggregations):
        where = f"{label}: aggregations[{i}]"
        if not isinstance(declared, Aggregation):
            raise DefinitionError(f"{where} must be an Aggregation, got {declared!r}")
        agg = declared
        check_column(where, agg.column, field="column")
        try:
            rule.canonical_function(agg.function)
        except ValueError as err:
            raise DefinitionError(f"{where} ({agg.column}): {err}") from None
        hop = agg.slide_interval
        if hop is None and view_hop is not None and agg.time_window is not None:
            hop = view_hop
            agg = Aggregation(agg.column, agg.function, agg.time_window, hop, agg.name or None)
        try:
            rule.check_window(agg.time_window, hop)
        except ValueError as err:
            raise DefinitionError(f"{where} ({agg.function} of '{agg.column}'): {err}") from None
        column = by_name.get(agg.column)
        if column is None:
            raise DefinitionError(
                f"{where} aggregates column '{agg.column}', which the view's schema does not declare; add "
                f"Field(name='{agg.column}', dtype=...) to 'schema'. {suggestion(agg.column, by_name)}"
            )
        try:
            out_type = rule.output_type(agg.function, column.dtype.name)
        except ValueError as err:
            raise DefinitionError(f"{where} ('{agg.column}'): {err}") from None
        name = agg.output_name
        check_column(where, name, field="name")
        if any(o.name == name for o in outputs):
            raise DefinitionError(
                f"{label}: two aggregations have the output name '{name}'; give one a distinct 'name='"
            )
        aggs.append(agg)
        outputs.append(Field(name=name, dtype=_type(out_type)))
    return aggs, outputs


def _type(name: str) -> PotluckType:
    return PRIMITIVES[name]
