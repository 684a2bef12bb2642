"""What users declare: entities, fields and types, sources, feature views, feature services.

Pure values with no I/O; nothing here imports another part of Potluck.
"""

from potluck.definitions.aggregation import Aggregation
from potluck.definitions.aggregation_views import BatchFeatureView, StreamFeatureView, stream_feature_view
from potluck.definitions.base import Definition
from potluck.definitions.entity import Entity
from potluck.definitions.feature_service import FeatureService
from potluck.definitions.feature_view import FeatureView, FeatureViewProjection
from potluck.definitions.field import Field
from potluck.definitions.label_view import ConflictPolicy, LabelView
from potluck.definitions.on_demand import OnDemandFeatureView, on_demand_feature_view
from potluck.definitions.project import Project
from potluck.definitions.request_source import RequestSource
from potluck.definitions.sources import CsvFormat, DataSource, FileSource, ParquetFormat, PostgreSQLSource, PushSource
from potluck.definitions.stream_sources import AvroFormat, JsonFormat, KafkaSource, RedisStreamSource
from potluck.definitions.types import ValueType

# The kinds whose objects are feature views (keyed by entities, read as "view:feature"); one namespace.
VIEW_KINDS = (FeatureView.kind, StreamFeatureView.kind, LabelView.kind)

DEFINITION_KINDS: dict[str, type[Definition]] = {
    Project.kind: Project,
    Entity.kind: Entity,
    DataSource.kind: DataSource,
    FeatureView.kind: FeatureView,
    LabelView.kind: LabelView,
    FeatureService.kind: FeatureService,
    OnDemandFeatureView.kind: OnDemandFeatureView,
    StreamFeatureView.kind: StreamFeatureView,
}

__all__ = [
    "DEFINITION_KINDS",
    "VIEW_KINDS",
    "ConflictPolicy",
    "Aggregation",
    "AvroFormat",
    "BatchFeatureView",
    "CsvFormat",
    "DataSource",
    "Definition",
    "Entity",
    "FeatureService",
    "FeatureView",
    "FeatureViewProjection",
    "Field",
    "FileSource",
    "LabelView",
    "JsonFormat",
    "KafkaSource",
    "OnDemandFeatureView",
    "ParquetFormat",
    "Project",
    "PostgreSQLSource",
    "PushSource",
    "RedisStreamSource",
    "RequestSource",
    "StreamFeatureView",
    "ValueType",
    "on_demand_feature_view",
    "stream_feature_view",
]
