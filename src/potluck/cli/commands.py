"""Registers every command on the `potluck` group."""

from potluck.cli import data_cmds, definitions_cmds, monitor_cmds, monitor_ops_cmds, repo_cmds, server_cmds, stream_cmds  # noqa: F401

monitor_ops_cmds.register(monitor_cmds.monitor)
