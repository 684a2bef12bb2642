"""Registers every command on the `potluck` group."""

from potluck.cli import data_cmds, definitions_cmds, monitor_cmds, repo_cmds, server_cmds  # noqa: F401
