"""Registers every command on the `potluck` group."""

from potluck.cli import (  # noqa: F401
    backup_cmds,
    data_cmds,
    definitions_cmds,
    logs_cmds,
    monitor_cmds,
    monitor_ops_cmds,
    repo_cmds,
    server_cmds,
    skew_cmds,
    stream_cmds,
    stream_status_cmds,
    ui_cmds,
)

monitor_ops_cmds.register(monitor_cmds.monitor)
stream_cmds.stream.add_command(stream_status_cmds.status_cmd)
