"""Airflow operators and a sensor for Potluck pipelines (`pip install 'potluck[airflow]'`, Airflow 3.x).

Each operator opens the feature repository at `repo_path` (or `$POTLUCK_REPO_PATH`), runs one step of
`potluck.integrations.steps` over the DAG run's data interval and returns the step's summary (its XCom
`return_value`). A failed check fails the task without retries (the same data gives the same verdict)
and pushes its summary under the XCom key `summary`; other errors fail it with retries as configured.
Airflow is imported when an operator is first used, with an error naming the extra when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from potluck.integrations.airflow.operators import (
        PotluckMaterializeOperator,
        PotluckMonitorOperator,
        PotluckValidateOnlineOperator,
        PotluckValidateSourcesOperator,
    )
    from potluck.integrations.airflow.sensors import PotluckFreshnessSensor

__all__ = [
    "PotluckFreshnessSensor",
    "PotluckMaterializeOperator",
    "PotluckMonitorOperator",
    "PotluckValidateOnlineOperator",
    "PotluckValidateSourcesOperator",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        import airflow.sdk  # noqa: F401
    except ImportError:
        from potluck.definitions.errors import MissingExtraError

        raise MissingExtraError("apache-airflow", "airflow") from None
    from potluck.integrations.airflow import operators, sensors

    return getattr(sensors if name == "PotluckFreshnessSensor" else operators, name)
