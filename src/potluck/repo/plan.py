"""The difference between the definitions in a repository and those in the registry.

Breaking changes (flagged, and refused by apply unless allowed): a feature removed or its type
changed, a feature view or entity deleted, an entity's join key or type changed, a view's join keys
changed, a ttl shortened, an on-demand view's `write_to_online_store` turned on or off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from potluck.definitions import Definition, Entity, FeatureView, OnDemandFeatureView
from potluck.definitions.base import canonical_json
from potluck.registry.diff import FieldChange, field_changes
from potluck.registry.snapshot import RegistrySnapshot


@dataclass(frozen=True)
class ObjectDiff:
    kind: str
    name: str
    action: str  # created | updated | deleted | unchanged
    changes: tuple[FieldChange, ...] = ()
    breaking: tuple[str, ...] = ()
    obj: Definition | None = None
    old: Definition | None = None  # the registered object this diff replaces or deletes


@dataclass
class Plan:
    base_version: int
    diffs: list[ObjectDiff] = field(default_factory=list)
    # After an apply: online cleanups that could not run yet (they are finished by the next apply).
    warnings: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return any(d.action != "unchanged" for d in self.diffs)

    def same_changes(self, other: Plan) -> bool:
        """True when both plans change the same objects, from the same state to the same state."""
        return self._change_set() == other._change_set()

    def differences(self, other: Plan) -> list[str]:
        """The changes of this plan that `other` does not make, as 'kind 'name' action'."""
        extra = self._change_set() - other._change_set()
        return sorted(f"{kind} '{name}' {action}" for kind, name, action, _, _ in extra) or ["fewer changes"]

    def _change_set(self) -> set[tuple[str, str, str, str, str]]:
        def spec(obj: Definition | None) -> str:
            return canonical_json(obj.to_spec()) if obj is not None else ""

        return {
            (d.kind, d.name, d.action, spec(d.old), spec(d.obj if d.action != "deleted" else None))
            for d in self.diffs
            if d.action != "unchanged"
        }

    @property
    def breaking(self) -> list[str]:
        return [f"{d.kind} '{d.name}': {reason}" for d in self.diffs for reason in d.breaking]

    def counts(self) -> dict[str, int]:
        out = {"created": 0, "updated": 0, "deleted": 0, "unchanged": 0}
        for d in self.diffs:
            out[d.action] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "base_version": self.base_version,
            "counts": self.counts(),
            "breaking": self.breaking,
            "changes": [
                {
                    "kind": d.kind,
                    "name": d.name,
                    "action": d.action,
                    "fields": [{"path": c.path, "old": c.old, "new": c.new} for c in d.changes],
                    "breaking": list(d.breaking),
                }
                for d in self.diffs
                if d.action != "unchanged"
            ],
        }


def breaking_reasons(old: Definition, new: Definition | None) -> list[str]:
    if new is None:
        if isinstance(old, (FeatureView, OnDemandFeatureView)):
            return ["deleted (its features disappear)"]
        if isinstance(old, Entity):
            return ["deleted"]
        return []
    reasons = []
    same_kind = type(old) is type(new)
    if same_kind and isinstance(old, (FeatureView, OnDemandFeatureView)):
        assert isinstance(new, (FeatureView, OnDemandFeatureView))
        new_types = {f.name: f.dtype for f in new.features}
        for f in old.features:
            if f.name not in new_types:
                reasons.append(f"feature '{f.name}' removed")
            elif new_types[f.name] != f.dtype:
                reasons.append(f"feature '{f.name}' changed type {f.dtype.name} -> {new_types[f.name].name}")
    if isinstance(old, OnDemandFeatureView) and isinstance(new, OnDemandFeatureView):
        if old.write_to_online_store != new.write_to_online_store:
            reasons.append(
                "write_to_online_store turned on (served from a new, empty table until push or materialize writes it)"
                if new.write_to_online_store
                else "write_to_online_store turned off (computed at read time: reads need its request fields)"
            )
        elif new.write_to_online_store and old.join_keys != new.join_keys:
            reasons.append(f"join keys changed {old.join_keys} -> {new.join_keys}")
    if isinstance(old, FeatureView) and isinstance(new, FeatureView):
        if old.join_keys != new.join_keys:
            reasons.append(f"join keys changed {old.join_keys} -> {new.join_keys}")
        old_ttl, new_ttl = old.ttl.total_seconds(), new.ttl.total_seconds()
        if (old_ttl == 0 and new_ttl > 0) or (0 < new_ttl < old_ttl):
            reasons.append(f"ttl shortened {old.ttl} -> {new.ttl}")
    if isinstance(old, Entity) and isinstance(new, Entity):
        if old.join_keys != new.join_keys:
            reasons.append(f"join key changed {old.join_key} -> {new.join_key}")
        if old.value_type != new.value_type:
            reasons.append(f"value type changed {old.value_type.name} -> {new.value_type.name}")
    return reasons


def compute_plan(
    desired: Sequence[Definition],
    snapshot: RegistrySnapshot,
    deletes: Sequence[Definition] = (),
    *,
    delete_missing: bool,
) -> Plan:
    """Diff `desired` against the registry; with `delete_missing`, objects not desired are deleted."""
    plan = Plan(snapshot.version)
    wanted = {(o.kind, o.name): o for o in desired}
    for (kind, name), obj in wanted.items():
        current = snapshot.of_kind(kind).get(name)
        if current is None:
            plan.diffs.append(ObjectDiff(kind, name, "created", obj=obj))
            continue
        changes = field_changes(current.to_spec(), obj.to_spec())
        if not changes:
            plan.diffs.append(ObjectDiff(kind, name, "unchanged", obj=obj, old=current))
        else:
            plan.diffs.append(
                ObjectDiff(
                    kind, name, "updated", tuple(changes), tuple(breaking_reasons(current, obj)), obj, old=current
                )
            )
    doomed = {(o.kind, o.name) for o in deletes}
    for current in snapshot.all():
        key = (current.kind, current.name)
        if key in wanted:
            continue
        if key in doomed or delete_missing:
            plan.diffs.append(
                ObjectDiff(
                    current.kind,
                    current.name,
                    "deleted",
                    breaking=tuple(breaking_reasons(current, None)),
                    obj=current,
                    old=current,
                )
            )
    order = {
        "project": -1,
        "entity": 0,
        "data_source": 1,
        "feature_view": 2,
        "stream_feature_view": 2,
        "label_view": 2,
        "on_demand_feature_view": 3,
        "feature_service": 4,
    }
    plan.diffs.sort(key=lambda d: (order.get(d.kind, 9), d.name))
    return plan
