"""The registry: versioned definitions in SQL, the apply history, and a cached reader."""
