"""`ServedAnswer`: an SDK read's `OnlineResponse` as the feature log reads an answer, built lazily.

The request path keeps a reference to the response (no copy, no conversion); the columns are laid
out (`answer()`) on the logger's thread, when the record is written or pickled to the writer
process (which then receives plain lists, never the response).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from potluck.online.typed_values import http_column, needs_http_form

if TYPE_CHECKING:
    from potluck.retrieval.online import OnlineResponse


class ServedAnswer:
    __slots__ = ("_answer", "_response")

    def __init__(self, response: OnlineResponse) -> None:
        self._response: OnlineResponse | None = response
        self._answer: dict[str, Any] | None = None

    def answer(self) -> dict[str, Any]:
        """`{"metadata": {"feature_names"}, "results": [...]}`: join keys first, then every output."""
        if self._answer is None:
            response = self._response
            assert response is not None
            self._answer = _layout(response)
            self._response = None
        return self._answer

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self.answer(),))


def _layout(response: OnlineResponse) -> dict[str, Any]:
    keys = list(response.entity_columns)
    outputs = response.output_names
    values = response.values
    statuses = response.statuses
    stamps = response.event_timestamps
    dtypes = response.dtypes
    plain: dict[int, list[str]] = {}  # the views' status lists are shared by their outputs

    def status_text(column: list[Any]) -> list[str]:
        found = plain.get(id(column))
        if found is None:
            found = plain[id(column)] = [str(s) for s in column]
        return found

    results: list[dict[str, Any]] = [{"values": response.entity_columns[k]} for k in keys]
    for name in outputs:
        dtype = dtypes[name]
        column = values[name]
        results.append(
            {
                "values": http_column(dtype, column) if needs_http_form(dtype) else column,
                "statuses": status_text(statuses[name]),
                "event_timestamps": stamps[name],
            }
        )
    return {"metadata": {"feature_names": [*keys, *outputs]}, "results": results}
