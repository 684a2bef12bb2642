"""The Spark materialization engine (`batch_engine: {type: spark.engine}`).

The latest row per entity key is computed in Spark by the builder's latest-rows query in its
Spark dialect, and written to the online store from the executors (`mapInArrow`), in bounded
slices, through the configured store's newest-wins `write`. The interval is recorded by the
runner only after the Spark job, that is every partition, succeeded.
"""

from potluck.materialize.spark.engine import SparkEngine

__all__ = ["SparkEngine"]
