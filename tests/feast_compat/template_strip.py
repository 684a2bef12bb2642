"""Feast's `feast init` repository without what Potluck does not build yet: on-demand and label views.

The definitions file is edited as a syntax tree, so the result does not depend on Feast's comments or
layout: the on-demand views, request sources and label views (with the sources only they use) are
removed, their names are dropped from imports and feature-service lists, and nothing else changes.
"""

from __future__ import annotations

import ast
from pathlib import Path

LATER_KINDS = {"on_demand_feature_view", "RequestSource", "LabelView", "ConflictPolicy"}


def _called(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(stmt: ast.stmt) -> set[str]:
    if isinstance(stmt, ast.Assign):
        return {t.id for t in stmt.targets if isinstance(t, ast.Name)}
    if isinstance(stmt, ast.FunctionDef):
        return {stmt.name}
    return set()


def _is_later_kind(stmt: ast.stmt) -> bool:
    if isinstance(stmt, ast.FunctionDef):
        return any(
            _called(d) in LATER_KINDS or (isinstance(d, ast.Name) and d.id in LATER_KINDS) for d in stmt.decorator_list
        )
    return isinstance(stmt, ast.Assign) and _called(stmt.value) in LATER_KINDS


def strip_later_kinds(source: str) -> str:
    tree = ast.parse(source)
    body = list(tree.body)
    removed = set().union(*(_targets(s) for s in body if _is_later_kind(s)))
    body = [s for s in body if not _is_later_kind(s)]
    while True:  # a definition whose every user was removed (the label view's push source) goes too
        orphans = []
        for stmt in body:
            names = _targets(stmt)
            if not names:
                continue
            users = [u for u in tree.body if u is not stmt and names & _names_in(u)]
            if users and all(_targets(u) <= removed for u in users):
                orphans.append(stmt)
        if not orphans:
            break
        for stmt in orphans:
            removed |= _targets(stmt)
            body.remove(stmt)
    for stmt in body:
        if isinstance(stmt, ast.ImportFrom):
            stmt.names = [a for a in stmt.names if a.name not in LATER_KINDS]
        for node in ast.walk(stmt):
            if isinstance(node, ast.List):
                node.elts = [e for e in node.elts if not (isinstance(e, ast.Name) and e.id in removed)]
    tree.body = [s for s in body if not (isinstance(s, ast.ImportFrom) and not s.names)]
    return ast.unparse(tree) + "\n"


def to_potluck(source: str) -> str:
    """Only the import prefix changes."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and (node.module == "feast" or node.module.startswith("feast."))
        ):
            node.module = "potluck" + node.module[len("feast") :]
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "feast" or alias.name.startswith("feast."):
                    alias.name = "potluck" + alias.name[len("feast") :]
    return ast.unparse(tree) + "\n"


def strip_file(path: Path) -> None:
    path.write_text(strip_later_kinds(path.read_text()))
