"""Tests that drive Feast 0.67's own code and documented requests against a Potluck server."""
