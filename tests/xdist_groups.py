"""How `pytest -n N --dist loadgroup` (`make test`) shares the tests among its worker processes.

A group runs on one worker, in collection order; groups go to whichever worker is free. Every test
on the run's Spark session is in the group `spark`, so one worker starts a JVM for the whole run: the
tests of a module whose name has `spark`, and every test with a parameter id `spark` (the Spark
engine of the offline contract suite). Every other test is grouped with the rest of its module, so a
module's fixtures are set up once. An explicit `@pytest.mark.xdist_group(name)` still counts where
xdist applies it. Session fixtures of servers (Kafka broker, Sentinel group, moto) are started once
per worker; tests isolate themselves by name, schema, database and port, so workers never collide.
"""

from __future__ import annotations

import re

from xdist.scheduler import LoadScopeScheduling

SPARK = "spark"
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


class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's scope scheduling with `group_of` as the scope."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)
