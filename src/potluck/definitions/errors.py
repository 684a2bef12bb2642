"""Errors raised by Potluck. Every error carries a message a user can act on."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PotluckError(Exception):
    """Base class of every error Potluck raises on purpose."""


class DefinitionError(PotluckError, ValueError):
    """A feature definition (entity, source, view, service) is invalid."""


class ConfigError(PotluckError, ValueError):
    """`feature_store.yaml` is missing, unreadable or invalid."""


class RepositoryError(PotluckError):
    """A feature repository could not be loaded or is inconsistent."""


class NotFoundError(PotluckError, KeyError):
    """A named object does not exist."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class RegistryConflictError(PotluckError):
    """Another writer changed the registry since this one read it."""


class BreakingChangeError(PotluckError):
    """An apply contains breaking changes and was not allowed to break."""


class RetrievalError(PotluckError, ValueError):
    """A retrieval request (historical or online) is invalid."""


class UnknownFeatureError(NotFoundError, RetrievalError):
    """A requested feature, feature view or feature service does not exist."""


class BackendUnavailableError(PotluckError):
    """A backing store (online store, registry database) cannot be reached."""


class MissingExtraError(PotluckError, ImportError):
    """An optional dependency is needed but not installed."""

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"The Python package '{module}' is required for this backend. "
            f"Install it with: pip install 'potluck[{extra}]'"
        )


def nearest_names(name: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The existing names closest to `name`, best first."""
    return difflib.get_close_matches(name, list(candidates), n=limit, cutoff=0.5)


def suggestion(name: str, candidates: Iterable[str]) -> str:
    """A sentence suggesting the nearest existing names, or listing what exists."""
    pool = sorted(set(candidates))
    close = nearest_names(name, pool)
    if close:
        return "Did you mean " + " or ".join(f"'{c}'" for c in close) + "?"
    if not pool:
        return "None exist yet."
    shown = ", ".join(f"'{c}'" for c in pool[:10])
    more = "" if len(pool) <= 10 else f" and {len(pool) - 10} more"
    return f"Existing names: {shown}{more}."


def not_found(kind: str, name: str, candidates: Iterable[str]) -> NotFoundError:
    return NotFoundError(f"{kind} '{name}' does not exist. {suggestion(name, candidates)}")
