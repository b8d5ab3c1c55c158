"""Changelog-backed state: one table per module."""
