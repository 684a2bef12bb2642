"""Feature monitoring: statistics (profiles), baselines, drift between a baseline and current data.

Statistics are computed inside DuckDB (`statistics`), drift metrics and rules in `drift`, and the
stable JSON shape of `potluck monitor run -o json` lives in `report`.
"""
