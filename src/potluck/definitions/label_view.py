"""`LabelView`: labels written by several labelers for the same entity keys, and how they are resolved.

A label view is a feature view (its features are the schema minus the entity columns, the
labeler column included): it is materialized, pushed and read online exactly like one, and online
reads give the newest label (last write wins). In training data its `conflict_policy` decides,
point in time, which labeler's label an entity row gets (docs/semantics.md, "Label views").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from enum import Enum
from typing import Any

from potluck.definitions.base import check_column, check_name
from potluck.definitions.entity import Entity
from potluck.definitions.errors import DefinitionError, suggestion
from potluck.definitions.feature_view import FeatureView
from potluck.definitions.field import Field
from potluck.definitions.sources import DataSource
from potluck.definitions.types import String


class ConflictPolicy(Enum):
    """How training data resolves labels that several labelers wrote for the same entity key."""

    LAST_WRITE_WINS = "last_write_wins"
    LABELER_PRIORITY = "labeler_priority"
    MAJORITY_VOTE = "majority_vote"

    @classmethod
    def parse(cls, value: object, label: str) -> ConflictPolicy:
        if isinstance(value, cls):
            return value
        for policy in cls:
            if value in (policy.value, policy.name):
                return policy
        valid = ", ".join(f"ConflictPolicy.{p.name}" for p in cls)
        raise DefinitionError(f"{label}: 'conflict_policy' must be one of {valid}, got {value!r}")


# The policies that read the labeler column (last write wins does not need one).
_USES_LABELER = (ConflictPolicy.LABELER_PRIORITY, ConflictPolicy.MAJORITY_VOTE)


class LabelView(FeatureView):
    kind = "label_view"

    def __init__(
        self,
        *,
        name: str,
        source: DataSource | None = None,
        schema: Sequence[Field] | None = None,
        entities: Sequence[Entity] | None = None,
        ttl: timedelta | None = timedelta(0),
        online: bool = True,
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        labeler_field: str = "labeler",
        conflict_policy: ConflictPolicy | str = ConflictPolicy.LAST_WRITE_WINS,
        reference_feature_view: str | None = None,
        labeler_priorities: Sequence[str] | None = None,
        join_keys: Sequence[str] | None = None,
    ) -> None:
        label = f"LabelView '{name}'"
        if source is None:
            raise DefinitionError(
                f"{label}: 'source' is required: a PushSource (with a batch_source) or a batch source such as FileSource"
            )
        super().__init__(
            name=name,
            source=source,
            schema=schema,
            entities=entities,
            ttl=ttl,
            online=online,
            description=description,
            tags=tags,
            owner=owner,
            join_keys=join_keys,
        )
        if not self.join_keys:
            raise DefinitionError(f"{label}: 'entities' must list at least one entity; labels are keyed by entities")
        self.labeler_field = check_column(label, labeler_field, field="labeler_field")
        self.conflict_policy = ConflictPolicy.parse(conflict_policy, label)
        if reference_feature_view in (None, ""):
            self.reference_feature_view = ""
        else:
            self.reference_feature_view = check_name(label, reference_feature_view, field="reference_feature_view")
        self.labeler_priorities = _priorities(label, labeler_priorities, self.conflict_policy)
        if self.features:  # else inferred from the source when applied, and checked then
            self._check_labeler(label)

    def _check_labeler(self, label: str) -> None:
        if self.labeler_field in self.join_keys:
            raise DefinitionError(
                f"{label}: 'labeler_field' '{self.labeler_field}' is a join key; name a label column of the schema"
            )
        if self.conflict_policy not in _USES_LABELER:
            return
        field = next((f for f in self.features if f.name == self.labeler_field), None)
        if field is None:
            raise DefinitionError(
                f"{label}: conflict_policy {self.conflict_policy.name} needs the labeler column "
                f"'{self.labeler_field}' in the schema (Field(name='{self.labeler_field}', dtype=String)), "
                f"or 'labeler_field' naming one. {suggestion(self.labeler_field, self.feature_names)}"
            )
        if field.dtype != String:
            raise DefinitionError(
                f"{label}: the labeler column '{self.labeler_field}' is declared {field.dtype.name}; "
                "declare it String (labelers are named by text)"
            )

    @property
    def label_names(self) -> list[str]:
        """The label columns: the features other than the labeler column."""
        return [f.name for f in self.features if f.name != self.labeler_field]

    def to_spec(self) -> dict[str, Any]:
        spec = super().to_spec()
        spec.pop("offline", None)
        spec["labeler_field"] = self.labeler_field
        spec["conflict_policy"] = self.conflict_policy.value
        spec["reference_feature_view"] = self.reference_feature_view
        spec["labeler_priorities"] = list(self.labeler_priorities)
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> LabelView:
        arguments = cls.common_spec_arguments(spec)
        for unstored in ("offline", "enable_validation"):  # not label view arguments
            arguments.pop(unstored)
        view = cls(
            name=spec["name"],
            schema=cls.stored_schema(spec),
            **arguments,
            labeler_field=spec.get("labeler_field", "labeler"),
            conflict_policy=spec.get("conflict_policy", ConflictPolicy.LAST_WRITE_WINS.value),
            reference_feature_view=spec.get("reference_feature_view") or None,
            labeler_priorities=spec.get("labeler_priorities") or None,
        )
        return cls.restore_registry_fields(view, spec)


def _priorities(label: str, given: Sequence[str] | None, policy: ConflictPolicy) -> tuple[str, ...]:
    """The labelers in priority order (highest first), checked against the policy."""
    if given is None or (isinstance(given, Sequence) and not isinstance(given, str) and len(given) == 0):
        if policy is ConflictPolicy.LABELER_PRIORITY:
            raise DefinitionError(
                f"{label}: conflict_policy LABELER_PRIORITY needs 'labeler_priorities', the labelers from "
                "highest to lowest priority, e.g. labeler_priorities=['expert', 'crowd']"
            )
        return ()
    if isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise DefinitionError(f"{label}: 'labeler_priorities' must be a list of labeler names, got {given!r}")
    if policy is not ConflictPolicy.LABELER_PRIORITY:
        raise DefinitionError(
            f"{label}: 'labeler_priorities' is only used by conflict_policy LABELER_PRIORITY (this view's is "
            f"{policy.name}); remove it or change the policy"
        )
    out: list[str] = []
    for i, item in enumerate(given):
        if not isinstance(item, str) or not item:
            raise DefinitionError(f"{label}: 'labeler_priorities[{i}]' must be a non-empty string, got {item!r}")
        if item in out:
            raise DefinitionError(f"{label}: 'labeler_priorities' lists '{item}' twice; list each labeler once")
        out.append(item)
    return tuple(out)
