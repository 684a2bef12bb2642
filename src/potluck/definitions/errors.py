"""Errors raised by Potluck. Every error carries a message a user can act on."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class PotluckError(Exception):
    """Base class of every error Potluck raises on purpose."""


class PotluckWarning(UserWarning):
    """Base class of every warning Potluck emits."""


class ConfigKeyWarning(PotluckWarning):
    """A `feature_store.yaml` key (usually one of Feast's) that is accepted but has no effect here."""


class DefinitionError(PotluckError, ValueError):
    """A feature definition (entity, source, view, service) is invalid."""


class ConfigError(PotluckError, ValueError):
    """`feature_store.yaml` is missing, unreadable or invalid."""


class RepositoryError(PotluckError):
    """A feature repository could not be loaded or is inconsistent."""


class NotFoundError(PotluckError, KeyError):
    """A named object does not exist.

    When built by `not_found` (or with `lead`, `name`, `kind` and `candidates`), the message is
    `lead` followed by the suggestion of the nearest candidates, and `among` rebuilds it from a
    narrower list (e.g. the names a caller is allowed to see).
    """

    def __init__(
        self,
        message: str,
        *,
        lead: str | None = None,
        name: str | None = None,
        kind: str | None = None,
        candidates: Iterable[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.lead = lead
        self.name = name
        self.kind = kind  # what the candidates are: "feature_view", "feature_service", "push_source"
        self.candidates = None if candidates is None else tuple(candidates)

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""

    def among(self, candidates: Iterable[str]) -> NotFoundError:
        """The same error, suggesting only from `candidates`."""
        if self.lead is None or self.name is None:
            return self
        pool = tuple(candidates)
        return type(self)(
            f"{self.lead} {suggestion(self.name, pool)}",
            lead=self.lead,
            name=self.name,
            kind=self.kind,
            candidates=pool,
        )


class RegistryConflictError(PotluckError):
    """Another writer changed the registry since this one read it."""


class DatasetExistsError(PotluckError):
    """A saved dataset (or its storage file) exists and `allow_overwrite` was not set."""


class BreakingChangeError(PotluckError):
    """An apply contains breaking changes and was not allowed to break."""


class RetrievalError(PotluckError, ValueError):
    """A retrieval request (historical or online) is invalid."""


class UnknownFeatureError(NotFoundError, RetrievalError):
    """A requested feature, feature view or feature service does not exist."""


class BackupError(PotluckError):
    """A registry export or online snapshot cannot be read, written or restored as asked."""


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


def not_found(kind: str, name: str, candidates: Iterable[str], *, key: str | None = None) -> NotFoundError:
    """`kind` labels the object in the message; `key` (e.g. "feature_view") names what the candidates are."""
    pool = tuple(candidates)
    lead = f"{kind} '{name}' does not exist."
    return NotFoundError(f"{lead} {suggestion(name, pool)}", lead=lead, name=name, kind=key, candidates=pool)


class TransformError(RetrievalError):
    """An on-demand feature view's function failed, or returned what its schema does not declare."""


class TransformCodeError(TransformError):
    """An on-demand feature view's function cannot be imported, or differs from the registered one."""
