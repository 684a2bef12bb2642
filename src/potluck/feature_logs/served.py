"""An SDK read's `OnlineResponse` as the feature log reads an answer: the server's JSON layout, pickled.

Built only for a sampled read (the logger calls it after the draw), on the caller's thread.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

from potluck.online.typed_values import http_column, needs_http_form

if TYPE_CHECKING:
    from potluck.retrieval.online import OnlineResponse


def served_body(response: OnlineResponse) -> bytes:
    """The answer as a pickle (`{"metadata": {"feature_names"}, "results": [...]}`, join keys first).

    Bytes, like the server's JSON bodies: a queue of them costs the garbage collector nothing,
    where queued responses (graphs of lists) would make every collection slower.
    """
    return pickle.dumps(_layout(response), protocol=pickle.HIGHEST_PROTOCOL)


def _layout(response: OnlineResponse) -> dict[str, Any]:
    keys = list(response.entity_columns)
    outputs = response.output_names
    values = response.values
    statuses = response.statuses
    stamps = response.event_micros()  # ints: the writer casts them to timestamps
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
