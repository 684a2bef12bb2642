"""`RepoConfig` (the parsed feature_store.yaml) at Feast's import path (`feast.repo_config`)."""

from potluck.repo.config import RepoConfig

__all__ = ["RepoConfig"]
