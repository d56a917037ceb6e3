"""Model fields for the columns FineFoundry's desktop app defined as plain TEXT.

Desktop timestamps come in two shapes: SQLite's `YYYY-MM-DD HH:MM:SS` (column defaults) and
Python's ISO `YYYY-MM-DDTHH:MM:SS.ffffff` (its log handler, run start and end). As text, the
`T` sorts after the space, so any comparison or ordering within one day goes wrong. Every
lookup and ordering on a TimestampField therefore compares the timestamp with the `T` read as
a space. On other databases the column is a real timestamp and nothing is rewritten.
"""

from __future__ import annotations

import json

from django.db import models
from django.db.models import lookups


class SortableTimestamp(models.Func):
    """A timestamp expression that orders and compares right across both desktop formats."""

    template = "%(expressions)s"
    arity = 1

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="REPLACE(%(expressions)s, 'T', ' ')", **extra_context)


class TimestampField(models.DateTimeField):
    """A DateTimeField over a column that may hold either desktop timestamp format."""


class _ComparesSortable:
    def process_lhs(self, compiler, connection, lhs=None):
        sql, params = super().process_lhs(compiler, connection, lhs)
        if connection.vendor == "sqlite":
            sql = f"REPLACE({sql}, 'T', ' ')"
        return sql, params


@TimestampField.register_lookup
class TimestampExact(_ComparesSortable, lookups.Exact):
    pass


@TimestampField.register_lookup
class TimestampGreaterThan(_ComparesSortable, lookups.GreaterThan):
    pass


@TimestampField.register_lookup
class TimestampGreaterThanOrEqual(_ComparesSortable, lookups.GreaterThanOrEqual):
    pass


@TimestampField.register_lookup
class TimestampLessThan(_ComparesSortable, lookups.LessThan):
    pass


@TimestampField.register_lookup
class TimestampLessThanOrEqual(_ComparesSortable, lookups.LessThanOrEqual):
    pass


@TimestampField.register_lookup
class TimestampRange(_ComparesSortable, lookups.Range):
    pass


class LegacyJSONField(models.JSONField):
    """A JSONField without SQLite's JSON_VALID check, which the desktop schema never had.

    A value that is not valid JSON (written by an old desktop version) reads back as the raw
    string instead of failing the whole query.

    On PostgreSQL the column is `text` as well, not `jsonb`: jsonb re-sorts object keys and
    drops duplicate ones, and a config's or metadata's key order is part of what the user wrote
    (and what the desktop app and an export show). The value is stored as `json.dumps` writes
    it on every engine, so both hold the same text. Nothing here filters inside these columns.
    """

    def db_check(self, connection):
        return None

    def db_type(self, connection):
        if connection.vendor == "postgresql":
            return "text"
        return super().db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if connection.vendor != "postgresql":
            return super().get_db_prep_value(value, connection, prepared)
        if not prepared:
            value = self.get_prep_value(value)
        if hasattr(value, "as_sql"):
            return value
        return json.dumps(value, cls=self.encoder)
