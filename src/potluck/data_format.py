"""File and stream formats at the import path Feast repositories use (`feast.data_format`).

File formats: Parquet, and CSV of Potluck's own. Stream formats (for `KafkaSource`): JSON and Avro.
"""

from potluck.definitions.sources import CsvFormat, ParquetFormat
from potluck.definitions.stream_sources import AvroFormat, JsonFormat, StreamFormat

__all__ = ["AvroFormat", "CsvFormat", "JsonFormat", "ParquetFormat", "StreamFormat"]
