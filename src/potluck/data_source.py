"""Data source names at the import path Feast repositories use (`feast.data_source`)."""

from potluck.definitions.request_source import RequestSource
from potluck.definitions.sources import DataSource, FileSource, PushSource
from potluck.definitions.stream_sources import KafkaSource, RedisStreamSource
from potluck.streaming.push import PushMode

__all__ = ["DataSource", "FileSource", "KafkaSource", "PushMode", "PushSource", "RedisStreamSource", "RequestSource"]
