"""Run a manage.py command, or a session delete, in a process whose SQLite work is slowed down.

    python tests/helpers/slowed.py OPS manage clear_logs --all --vacuum
    python tests/helpers/slowed.py OPS delete SESSION_ID

FINEFOUNDRY_DB names the database. Every connection the process opens gets a progress handler
that sleeps 1 ms every OPS SQLite virtual-machine steps, as a machine busy with other work would
slow it: work done under the write lock takes proportionally longer, so a writer that holds the
lock for a whole job holds it for seconds, while one that sizes its transactions by measured
time keeps them short. Nothing else about the process changes.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")


def main(ops: int, what: str, *args: str) -> None:
    import django

    django.setup()
    from django.db.backends.signals import connection_created

    def slow_down(sender, connection, **kwargs):
        if connection.vendor == "sqlite":
            connection.connection.set_progress_handler(lambda: time.sleep(0.001) or 0, ops)

    connection_created.connect(slow_down, weak=False)
    if what == "manage":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["manage.py", *args])
    elif what == "delete":
        from storage import api

        print(api.delete_scrape_session(int(args[0])), flush=True)
    else:
        raise SystemExit(f"unknown: {what}")


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], *sys.argv[3:])
