"""The web UI: read-only pages and a JSON API over the registry and monitoring data."""
