"""The OpenAPI 3.1 document of the UI's JSON API (/api/...)."""

from __future__ import annotations

from typing import Any

from potluck import __version__
from potluck.ui.data import SECTION_TITLES

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}
_SUMMARY = {
    "type": "object",
    "required": ["kind", "name"],
    "properties": {
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "description": {"type": "string"},
        "owner": {"type": "string"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
_LINEAGE = {
    "type": "object",
    "required": ["nodes", "edges"],
    "properties": {
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "kind", "name"],
                "properties": {
                    "id": {"type": "string", "description": "kind:name"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                },
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "to"],
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
            },
        },
    },
}
_OBJECT = {
    "type": "object",
    "required": ["kind", "name", "definition", "lineage", "history"],
    "properties": {
        "kind": {"type": "string"},
        "name": {"type": "string"},
        "definition": {"type": "object", "description": "metadata, schema and the stored spec"},
        "lineage": _LINEAGE,
        "history": {"type": "array", "items": {"type": "object"}},
        "freshness": {"type": ["object", "null"], "description": "feature views: staleness against its limit"},
        "statistics": {"type": "array", "description": "feature views: baseline and latest profiles per feature"},
        "drift": {"type": "object", "description": "feature views: per feature, the metrics of each check"},
        "skew": {"type": "array", "description": "views and services: the latest skew reports"},
        "monitoring_read_at": {
            "type": "string",
            "format": "date-time",
            "description": "feature views: when the freshness, statistics and drift shown were read",
        },
        "snippet": {"type": "object", "description": "feature services: code reading it online and offline"},
    },
}


def _ok(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    words = {
        401: "no or invalid credentials",
        403: "the credential lacks the reader role",
        404: "no such object",
        503: "the registry or the monitoring tables did not answer in time; retry (see Retry-After)",
    }
    return {str(s): _ok(_ERROR, words[s]) for s in statuses}


def build_openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/overview": {
            "get": {
                "summary": "Counts, recently changed objects, stale views and drifting features",
                "responses": {"200": _ok({"type": "object"}, "the overview"), **_errors(401, 403, 503)},
            }
        },
        "/api/lineage": {
            "get": {
                "summary": "The lineage graph of the project (ids are kind:name)",
                "responses": {"200": _ok(_LINEAGE, "the graph"), **_errors(401, 403, 503)},
            }
        },
        "/api/search": {
            "get": {
                "summary": "Objects whose name, features, description, owner or tags contain q",
                "parameters": [{"name": "q", "in": "query", "required": False, "schema": {"type": "string"}}],
                "responses": {"200": _ok({"type": "object"}, "the results"), **_errors(401, 403, 503)},
            }
        },
    }
    for section, title in SECTION_TITLES.items():
        paths[f"/api/{section}"] = {
            "get": {
                "summary": f"{title}: name, kind, description, owner and tags of each",
                "responses": {"200": _ok({"type": "array", "items": _SUMMARY}, "the list"), **_errors(401, 403, 503)},
            }
        }
        paths[f"/api/{section}/{{name}}"] = {
            "get": {
                "summary": f"One of the {title.lower()}: definition, lineage, history"
                + (", freshness, statistics, drift and skew" if section == "feature-views" else ""),
                "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": _ok(_OBJECT, "the object"), **_errors(401, 403, 404, 503)},
            }
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Potluck UI API", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}, {}],
        "paths": paths,
    }
