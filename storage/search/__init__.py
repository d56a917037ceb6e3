"""Pair search: query planning, the SQLite FTS5 index, and the index's health."""
