"""`FeatureService`: a named set of features that one model consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from potluck.definitions.base import Definition, check_name, check_tags, check_text
from potluck.definitions.errors import DefinitionError
from potluck.definitions.feature_logging import LoggingConfig
from potluck.definitions.feature_view import FeatureView
from potluck.definitions.on_demand import OnDemandFeatureView


class FeatureService(Definition):
    kind = "feature_service"

    def __init__(
        self,
        *,
        name: str,
        features: Sequence[FeatureView | OnDemandFeatureView],
        description: str = "",
        tags: dict[str, str] | None = None,
        owner: str = "",
        logging_config: LoggingConfig | None = None,
    ) -> None:
        self.name = check_name("FeatureService", name)
        label = f"FeatureService '{name}'"
        if isinstance(features, (str, bytes)) or not isinstance(features, Sequence) or not features:
            raise DefinitionError(
                f"{label}: 'features' must be a non-empty list of feature views or view[[...]] selections"
            )
        selections: list[tuple[str, list[str], str]] = []
        for i, item in enumerate(features):
            if not isinstance(item, (FeatureView, OnDemandFeatureView)):
                raise DefinitionError(
                    f"{label}: 'features[{i}]' must be a FeatureView or a selection view[['a', 'b']], got {item!r}"
                )
            proj = item.projection
            selections.append((item.name, [f.name for f in proj.features], proj.name_alias))
        used = [alias or view for view, _, alias in selections]
        if len(set(used)) != len(used):
            raise DefinitionError(f"{label}: the same feature view is listed twice; merge the selections")
        self.selections = selections
        self.description = check_text(label, description, "description")
        self.tags = check_tags(label, tags)
        self.owner = check_text(label, owner, "owner")
        if logging_config is not None and not isinstance(logging_config, LoggingConfig):
            raise DefinitionError(
                f"{label}: 'logging_config' must be a LoggingConfig (from potluck.feature_logging), "
                f"got {type(logging_config).__name__}"
            )
        self.logging_config = logging_config

    @property
    def feature_view_names(self) -> list[str]:
        return [view for view, _, _ in self.selections]

    def feature_references(self) -> list[str]:
        return [f"{view}:{feat}" for view, feats, _ in self.selections for feat in feats]

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": self.name,
            "features": [
                {"feature_view": view, "features": feats, "name_alias": alias} for view, feats, alias in self.selections
            ],
            "description": self.description,
            "tags": self.tags,
            "owner": self.owner,
        }
        if self.logging_config is not None:  # absent, not null: specs stored before it existed stay equal
            spec["logging_config"] = self.logging_config.to_spec()
        return spec

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> FeatureService:
        obj = cls.__new__(cls)
        obj.name = spec["name"]
        obj.selections = [(s["feature_view"], list(s["features"]), s.get("name_alias", "")) for s in spec["features"]]
        obj.description = spec.get("description", "")
        obj.tags = dict(spec.get("tags") or {})
        obj.owner = spec.get("owner", "")
        logging = spec.get("logging_config")
        obj.logging_config = LoggingConfig.from_spec(logging) if logging else None
        return obj
