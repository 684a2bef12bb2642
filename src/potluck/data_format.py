"""File formats at the import path Feast repositories use (`feast.data_format`).

Only the formats Potluck reads are here (Parquet, and CSV of its own); stream formats are not.
"""

from potluck.definitions.sources import CsvFormat, ParquetFormat

__all__ = ["CsvFormat", "ParquetFormat"]
