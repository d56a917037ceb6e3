"""The FineFoundry desktop app's writes, as it makes them, for the torture test.

    python tests/helpers/desktop_writer.py DATABASE SECONDS

One plain sqlite3 connection kept open (Python's defaults: 5 s busy timeout, the journal mode
the file has), a commit per call, the desktop's SQL: a session, pairs with pair_count recounted,
log records, training runs, until SECONDS pass or SIGTERM. Every committed write is acknowledged in a JSON line on stdout only
after its commit returned, with the seconds the call took (its wait for the lock included); every
error is reported, and the call is rolled back.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
import time
from pathlib import Path


def report(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def main(database: str, seconds: float) -> None:
    connection = sqlite3.connect(database)  # timeout=5.0, as the desktop app's connections
    deadline = time.monotonic() + seconds
    # SIGTERM ends the loop between calls, so every line on stdout is whole.
    stop: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    session_id = None
    n = 0
    while time.monotonic() < deadline and not stop:
        n += 1
        step = "session" if session_id is None or n % 25 == 0 else ("pairs", "log", "run")[n % 3]
        started = time.monotonic()
        try:
            if step == "session":
                cursor = connection.execute(
                    "INSERT INTO scrape_sessions (name, source, source_details, dataset_format, metadata_json)"
                    " VALUES (?, 'desktop', 'torture', 'standard', '{}')",
                    (f"desktop {n}",),
                )
                connection.commit()
                session_id = cursor.lastrowid
                report(event="session", id=session_id, seconds=time.monotonic() - started)
            elif step == "pairs":
                connection.executemany(
                    "INSERT INTO scraped_pairs (session_id, input_text, output_text, source_url, metadata_json)"
                    " VALUES (?, ?, ?, NULL, NULL)",
                    [(session_id, f"desktop question {n}.{i}", f"desktop answer {n}.{i}") for i in range(20)],
                )
                connection.execute(
                    "UPDATE scrape_sessions SET pair_count = (SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?)"
                    " WHERE id = ?",
                    (session_id, session_id),
                )
                connection.commit()
                report(event="pairs", session_id=session_id, added=20, seconds=time.monotonic() - started)
            elif step == "log":
                cursor = connection.execute(
                    "INSERT INTO app_logs (level, logger, message, module, func_name, line_no)"
                    " VALUES ('INFO', 'desktop', ?, 'torture', 'main', 1)",
                    (f"desktop record {n}",),
                )
                connection.commit()
                report(event="log", id=cursor.lastrowid, seconds=time.monotonic() - started)
            else:
                # As the desktop app: a directory of its own under the storage root, then the row.
                storage_path = Path(database).parent / "training_outputs" / f"desktop_run_{n}"
                for part in ("outputs", "checkpoints", "logs"):
                    (storage_path / part).mkdir(parents=True, exist_ok=True)
                cursor = connection.execute(
                    "INSERT INTO training_runs (name, status, base_model, storage_path, hp_json, logs_json)"
                    " VALUES (?, 'pending', 'tiny', ?, '{}', '[]')",
                    (f"desktop run {n}", str(storage_path)),
                )
                connection.execute(
                    "UPDATE training_runs SET status = 'running', updated_at = datetime('now') WHERE id = ?",
                    (cursor.lastrowid,),
                )
                connection.commit()
                report(event="run", id=cursor.lastrowid, seconds=time.monotonic() - started)
        except sqlite3.Error as exc:
            connection.rollback()
            report(event="error", step=step, error=str(exc), at=time.time(), seconds=time.monotonic() - started)
        time.sleep(0.02)
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
