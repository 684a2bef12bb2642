"""Offline stores: point-in-time joins and latest-row scans over batch sources."""
