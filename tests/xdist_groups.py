"""How `pytest -n N --dist loadgroup` (`make test`) shares the tests among its worker processes.

A group runs on one worker, in collection order; groups go to whichever worker is free. Every test
on the run's Spark session is in the group `spark`, so one worker starts a JVM for the whole run: the
tests of a module whose name has `spark`, and every test with a parameter id `spark` (the Spark
engine of the offline contract suite). Every other test is grouped with the rest of its module, so a
module's fixtures are set up once. An explicit `@pytest.mark.xdist_group(name)` still counts where
xdist applies it. Session fixtures of servers (Kafka broker, Sentinel group, moto) are started once
per worker; tests isolate themselves by name, schema, database and port, so workers never collide.

Groups are handed out in the order of their first test, so `run_order` puts the longest first (the
Spark group, then the crash tests) and the modules that wait for a background environment install
(Feast, Airflow) last, when the install is done: no worker ends the run on a long group alone or
sits waiting on an install.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TypeVar

from xdist.scheduler import LoadScopeScheduling

T = TypeVar("T")
# Groups that take minutes: started first (measured with `pytest --durations`).
LONG_GROUPS = (SPARK := "spark", "tests/streaming/test_stream_crash.py", "tests/streaming/test_kafka_source.py")

_PARAM_ID = re.compile(r"(?:^|-)spark(?:-|$)")


def group_of(nodeid: str) -> str:
    """The group of a test by its node id: `spark`, an explicit group, or its module's path."""
    module, _, rest = nodeid.partition("::")
    if rest.rfind("@") > rest.rfind("]"):  # xdist's explicit group suffix
        return rest.rsplit("@", 1)[1]
    if SPARK in module.rsplit("/", 1)[-1]:
        return SPARK
    params = rest[rest.find("[") + 1 : -1] if rest.endswith("]") else ""
    if _PARAM_ID.search(params):
        return SPARK
    return module


def run_order(items: Sequence[T], nodeid: Callable[[T], str], waits_for_install: Callable[[T], bool]) -> list[T]:
    """`items` with the long groups first and the modules that wait for an install last; else as collected."""
    late = {group_of(nodeid(item)) for item in items if waits_for_install(item)}

    def rank(item: T) -> tuple[int, int]:
        group = group_of(nodeid(item))
        if group in LONG_GROUPS:
            return (0, LONG_GROUPS.index(group))
        return (2, 0) if group in late else (1, 0)

    return sorted(items, key=rank)  # stable: collection order within each rank


class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's scope scheduling with `group_of` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)
