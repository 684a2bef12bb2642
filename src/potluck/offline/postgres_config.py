"""`offline_store: type: postgres`: the PostgreSQL offline store's settings (Feast's keys)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PostgreSQLOfflineStoreConfig(BaseModel):
    """Where the PostgreSQL offline store connects; the keys of Feast's PostgreSQLOfflineStoreConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    type: Literal["postgres"]
    host: str = "localhost"
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = "postgres"
    db_schema: str = "public"  # where unqualified table names are looked up
    user: str | None = None
    password: str | None = None
    sslmode: str | None = None
    sslkey_path: str | None = None
    sslcert_path: str | None = None
    sslrootcert_path: str | None = None
    keepalives_idle: int | None = Field(default=None, ge=1)
    min_conn: int = Field(default=0, ge=0)
    max_conn: int = Field(default=10, ge=1)  # connections open at once (each running retrieval holds one)
    connect_timeout_seconds: int = Field(default=10, ge=1)

    def conninfo(self) -> str:
        """The libpq connection string (sessions in UTC, as the query builder requires)."""
        from psycopg.conninfo import make_conninfo

        settings: dict[str, str | int | None] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.database,
            "connect_timeout": self.connect_timeout_seconds,
            "options": "-c TimeZone=UTC",
            "application_name": "potluck-offline",
        }
        optional = {
            "user": self.user,
            "password": self.password,
            "sslmode": self.sslmode,
            "sslkey": self.sslkey_path,
            "sslcert": self.sslcert_path,
            "sslrootcert": self.sslrootcert_path,
            "keepalives_idle": self.keepalives_idle,
        }
        settings.update({k: v for k, v in optional.items() if v is not None})
        return make_conninfo("", **settings)
