"""Setting an SQLite PRAGMA for a while and putting the previous value back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# The name is formatted into the SQL (a PRAGMA takes no parameters), so only these are accepted.
INTEGER_PRAGMAS = frozenset({"busy_timeout", "wal_autocheckpoint"})


@contextlib.contextmanager
def pragma_set(connection, name: str, value: int) -> Iterator[int]:
    """Set an integer PRAGMA on a Django connection; yield its previous value and restore it on the way out."""
    if name not in INTEGER_PRAGMAS:
        raise ValueError(f"pragma_set handles {', '.join(sorted(INTEGER_PRAGMAS))}, not {name!r}")
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA {name}")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield previous
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {name} = {previous}")
