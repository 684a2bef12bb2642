"""Request and response bodies (Feast-compatible JSON shapes). These models are the OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)

Name = Annotated[str, Field(min_length=1)]
# "view:feature": exactly one colon with a name on each side (what the server can resolve)
FeatureRef = Annotated[str, Field(pattern=r"^[^:]+:[^:]+$")]
FeatureList = Annotated[list[FeatureRef], Field(min_length=1)]


def _omit_not_null(schema: dict[str, Any]) -> None:
    """A field that may be omitted but not sent as null: drop null from its schema."""
    members = [m for m in schema.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        schema.update(members[0])


def _entity_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str, bool)):
        return value
    raise ValueError("an entity value must be an integer, number, string, boolean or null")


EntityValue = Annotated[
    Any,
    PlainValidator(_entity_value),
    WithJsonSchema({"type": ["integer", "number", "string", "boolean", "null"]}),
]


def _not_null(value: Any) -> Any:
    """Optional fields may be omitted but not sent as null (the schema has no null for them)."""
    if value is None:
        raise ValueError("omit the field instead of sending null")
    return value


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _equal_lengths(columns: dict[str, list[Any]], field: str) -> None:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"'{k}': {n}" for k, n in lengths.items())
        raise ValueError(f"all columns of '{field}' must have the same length; got {shown}")


class GetOnlineFeaturesRequest(_Body):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"anyOf": [{"required": ["features"]}, {"required": ["feature_service"]}]},
    )

    # absent means None; an explicit null is rejected, as the schema says
    features: FeatureList | None = Field(
        default=None,
        description=(
            "Feature references 'view:feature' (feature views, label views and on-demand feature views). "
            "Ignored when 'feature_service' is given (as in Feast)."
        ),
        json_schema_extra=_omit_not_null,
    )
    feature_service: Name | None = Field(
        default=None, description="A feature service name.", json_schema_extra=_omit_not_null
    )

    _no_null = field_validator("features", "feature_service", mode="before")(_not_null)

    entities: dict[str, list[EntityValue]] = Field(
        description=(
            "Join-key columns and the request fields of on-demand feature views: each key maps to one value "
            "per entity row; all columns equally long."
        )
    )
    full_feature_names: StrictBool = Field(default=False, description="Name features 'view__feature'.")
    include_feature_view_version_metadata: StrictBool = Field(
        default=False, description="Add metadata.feature_view_metadata: the name of each feature view read."
    )

    @model_validator(mode="after")
    def _check(self) -> GetOnlineFeaturesRequest:
        if self.features is None and self.feature_service is None:
            raise ValueError("give 'features' or 'feature_service'")
        if self.feature_service is not None:
            self.features = None  # Feast reads the service and ignores the list
        _equal_lengths(self.entities, "entities")
        return self

    @property
    def row_count(self) -> int:
        return len(next(iter(self.entities.values()))) if self.entities else 0


def _push_column(value: Any) -> Any:
    if isinstance(value, dict):
        raise ValueError("a column must be a list of values, or one value for every row")
    return value


# A column: a list of values, or one value repeated for every row (as in Feast's examples)
PushColumn = Annotated[
    Any,
    PlainValidator(_push_column),
    WithJsonSchema({"anyOf": [{"type": "array"}, {"type": ["integer", "number", "string", "boolean", "null"]}]}),
]


def _push_mode(value: Any) -> Any:
    """Feast's spellings ("online") and the names of its PushMode enum ("ONLINE")."""
    if isinstance(value, str) and value in PUSH_MODES_UPPER:
        return value.lower()
    return value


PUSH_MODES_UPPER = ("ONLINE", "OFFLINE", "ONLINE_AND_OFFLINE")
PushTo = Annotated[
    Literal["online", "offline", "online_and_offline"],
    BeforeValidator(_push_mode),
    WithJsonSchema({"type": "string", "enum": ["online", "offline", "online_and_offline", *PUSH_MODES_UPPER]}),
]
Columns = Annotated[
    dict[str, list[Any]], Field(min_length=1, description="Columns of the rows (at least one), all equally long.")
]
ACCEPTED = "Accepted for Feast compatibility; no effect here."


class PushRequest(_Body):
    push_source_name: Name
    df: dict[str, PushColumn] = Field(
        min_length=1,
        description="Columns of the rows to push (at least one): lists, all equally long, or single values "
        "repeated for every row (only single values: one row).",
    )
    to: PushTo = "online"
    allow_registry_cache: StrictBool = Field(default=True, description=ACCEPTED)
    transform_on_write: StrictBool = Field(default=True, description=ACCEPTED)
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="Windowed aggregations: a push repeated with the same key updates their tiles only once.",
    )

    @model_validator(mode="after")
    def _check(self) -> PushRequest:
        _equal_lengths({k: v for k, v in self.df.items() if isinstance(v, list)}, "df")
        return self

    @property
    def row_count(self) -> int:
        return next((len(v) for v in self.df.values() if isinstance(v, list)), 1)


class WriteToOnlineStoreRequest(_Body):
    feature_view_name: Name
    df: Columns
    allow_registry_cache: StrictBool = Field(default=True, description=ACCEPTED)
    transform_on_write: StrictBool = Field(default=True, description=ACCEPTED)

    @model_validator(mode="after")
    def _check(self) -> WriteToOnlineStoreRequest:
        _equal_lengths(self.df, "df")
        return self

    @property
    def row_count(self) -> int:
        return len(next(iter(self.df.values())))


ViewNames = Annotated[
    list[Name] | None,
    Field(description="Feature views and label views by name. Default (absent or null): every view."),
]
Version = Annotated[
    Literal["latest"] | None,
    Field(description="Only the current definition can be materialized: 'latest' (or null)."),
]


class MaterializeRequest(_Body):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["start_ts", "end_ts"],
                    "properties": {"start_ts": {"type": "string"}, "end_ts": {"type": "string"}},
                },
                {"required": ["disable_event_timestamp"], "properties": {"disable_event_timestamp": {"const": True}}},
            ]
        },
    )

    start_ts: datetime | None = Field(
        default=None, description="ISO 8601; without a time zone it is UTC. Required unless disable_event_timestamp."
    )
    end_ts: datetime | None = Field(
        default=None, description="ISO 8601; without a time zone it is UTC. Required unless disable_event_timestamp."
    )
    feature_views: ViewNames = None
    disable_event_timestamp: StrictBool = Field(
        default=False, description="Materialize every row from 1970-01-01 up to now (start_ts and end_ts ignored)."
    )
    full_feature_names: StrictBool = Field(default=False, description=ACCEPTED)
    version: Version = None

    @model_validator(mode="after")
    def _check(self) -> MaterializeRequest:
        if not self.disable_event_timestamp and (self.start_ts is None or self.end_ts is None):
            raise ValueError("give 'start_ts' and 'end_ts', or 'disable_event_timestamp': true")
        return self


class MaterializeIncrementalRequest(_Body):
    end_ts: datetime = Field(description="ISO 8601; without a time zone it is UTC.")
    feature_views: ViewNames = None
    full_feature_names: StrictBool = Field(default=False, description=ACCEPTED)
    version: Version = None


# -- responses --------------------------------------------------------------------------------------
class FeatureViewMetadata(BaseModel):
    name: str


class OnlineMetadata(BaseModel):
    feature_names: list[str]
    feature_view_metadata: list[FeatureViewMetadata] | None = Field(
        default=None, description="Only with include_feature_view_version_metadata."
    )


class OnlineColumn(BaseModel):
    values: list[Any]
    statuses: list[Literal["PRESENT", "NOT_FOUND", "OUTSIDE_MAX_AGE", "NULL_VALUE"]]
    event_timestamps: list[datetime]


class GetOnlineFeaturesResponse(BaseModel):
    metadata: OnlineMetadata
    results: list[OnlineColumn]


class PushResponse(BaseModel):
    """The answer of /push and /write-to-online-store."""

    status: Literal["ok"]
    rows: int


class MaterializeResponse(BaseModel):
    status: Literal["ok"]
    feature_views: list[str] | None


class HealthResponse(BaseModel):
    status: Literal["ok", "ready"]


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. 'invalid_request', 'forbidden'.")
    message: str
    details: Any = None
    retryable: bool = False


class ErrorBody(BaseModel):
    error: ErrorDetail
