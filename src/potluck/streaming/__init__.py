"""Push ingestion (and, later, stream consumers)."""
