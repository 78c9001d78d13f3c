"""Helpers for testing and measuring the explorer in real hosts (needs the `test` extra)."""
