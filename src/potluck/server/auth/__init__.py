"""Authentication (API keys, OIDC) and authorization (roles, scopes) of the feature server."""

from potluck.server.auth.audit import AuditLog, AuditRecord
from potluck.server.auth.authenticator import Authenticator
from potluck.server.auth.keys import ApiKeyInfo, ApiKeyStore
from potluck.server.auth.oidc import OidcVerifier
from potluck.server.auth.policy import ROLES, Principal, Scope, parse_scope
from potluck.server.auth.storage import ServerTables

__all__ = [
    "ROLES",
    "ApiKeyInfo",
    "ApiKeyStore",
    "AuditLog",
    "AuditRecord",
    "Authenticator",
    "OidcVerifier",
    "Principal",
    "Scope",
    "ServerTables",
    "parse_scope",
]
