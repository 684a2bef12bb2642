"""The PostgreSQL offline store at Feast's import path."""
