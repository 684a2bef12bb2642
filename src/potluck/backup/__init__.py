"""Backups: the registry as a file (`registry_file`), online snapshots (`online_snapshot`), online rebuilds."""
