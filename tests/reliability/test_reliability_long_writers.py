"""The long writers never hold the write lock long: a big session's delete, clear_logs --vacuum, a big dedupe
or merge, a search-index catch-up, near-duplicate signing and its band merge, forgetting the signatures
of edited pairs and removing signed pairs.

The desktop app's writer (tests/helpers/desktop_writer.py: plain sqlite3, 5 s busy timeout, commit
per call) runs beside the job, which runs in a process whose SQLite work is slowed down as on a
busy machine (tests/helpers/slowed.py): a job done in one transaction then holds the lock for
well over 5 s, one done in short transactions sized by measured time does not. A delete killed
half way leaves its session hidden, never visible half-deleted, and is finished by `doctor --fix`
or by deleting the session again.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.desktop import load_desktop_fixture
from tests.helpers.processes import PROJECT_ROOT, check_database, child_env, manage

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.sqlite_only("SQLite's single write lock, auto_vacuum and a plain sqlite3 writer on the file"),
]

PAIRS = 100_000
# 1 ms of sleep every this many SQLite VM steps: a 100,000-pair delete in one transaction takes ~8 s.
SLOW_OPS = "500"


# The texts of big_session's pairs: numbered alike, or unrelated (random hex words), so that
# near-duplicate signing has no clusters to chase.
NUMBERED = "printf('question %d about something', i), printf('answer %d in a few words', i)"
UNRELATED = "printf('%x %x %x?', random(), random(), random()), printf('%x %x', random(), random())"


def big_session(db: Path, session_id: int, pairs: int = PAIRS, *, texts: str = NUMBERED) -> None:
    connection = sqlite3.connect(db)
    connection.execute(
        "INSERT INTO scrape_sessions (id, source, name, pair_count) VALUES (?, 'test', 'big', ?)", (session_id, pairs)
    )
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        f" INSERT INTO scraped_pairs (session_id, input_text, output_text) SELECT ?, {texts} FROM n",
        (pairs, session_id),
    )
    connection.commit()
    connection.close()


def many_logs(db: Path, records: int) -> None:
    connection = sqlite3.connect(db)
    connection.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
        " INSERT INTO app_logs (level, logger, message) SELECT 'DEBUG', 'test', printf('%0300d', i) FROM n",
        (records,),
    )
    connection.commit()
    connection.close()


def slowed(db: Path, *args: str, ops: str = SLOW_OPS) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "tests" / "helpers" / "slowed.py"), ops, *args],
        cwd=PROJECT_ROOT,
        env=child_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def beside_the_desktop(db: Path, job: subprocess.Popen) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the desktop writer until `job` ends; return the job's result and the writer's events."""
    desktop = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "tests" / "helpers" / "desktop_writer.py"), str(db), "3600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = job.communicate(timeout=900)
    finally:
        desktop.send_signal(signal.SIGTERM)
    desktop_out, desktop_err = desktop.communicate(timeout=60)
    assert desktop.returncode == 0, desktop_err
    events = [json.loads(line) for line in desktop_out.splitlines()]
    return subprocess.CompletedProcess(job.args, job.returncode, out, err), events


def assert_the_desktop_never_failed(events: list[dict]) -> None:
    assert [event for event in events if event["event"] == "error"] == []
    assert len(events) >= 10  # it really wrote meanwhile


def shell_beside_the_desktop(db: Path, code: str, *, ops: str = SLOW_OPS) -> list[str]:
    """Run `code` in a slowed `manage.py shell` beside the desktop writer; it and the desktop must not fail.

    Returns the words the code printed (Django's shell prints a line of its own first).
    """
    result, events = beside_the_desktop(db, slowed(db, "manage", "shell", "-c", code, ops=ops))
    assert result.returncode == 0, result.stderr
    assert_the_desktop_never_failed(events)
    return result.stdout.split()


def test_a_big_session_delete_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    big_session(migrated_db, 7)
    result, events = beside_the_desktop(migrated_db, slowed(migrated_db, "delete", "7"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert_the_desktop_never_failed(events)
    connection = check_database(migrated_db)  # integrity ok, every pair_count exact
    assert connection.execute("SELECT COUNT(*) FROM scraped_pairs WHERE session_id = 7").fetchone() == (0,)
    assert connection.execute("SELECT COUNT(*) FROM scrape_sessions WHERE id = 7").fetchone() == (0,)
    assert connection.execute("SELECT COUNT(*) FROM storage_imports_in_progress").fetchone() == (0,)


def test_clear_logs_vacuum_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    big_session(migrated_db, 7)  # what stays: a full VACUUM copies all of it under the lock
    many_logs(migrated_db, 200_000)
    result, events = beside_the_desktop(
        migrated_db, slowed(migrated_db, "manage", "clear_logs", "--level", "DEBUG", "--vacuum")
    )
    assert result.returncode == 0, result.stderr
    assert_the_desktop_never_failed(events)
    assert "Deleted 200,000 log records" in result.stdout
    assert "free pages to the filesystem in" in result.stdout
    connection = check_database(migrated_db)
    assert connection.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    # Only pages freed meanwhile by the desktop's own deletes may be left; the logs' pages went back.
    assert connection.execute("PRAGMA freelist_count").fetchone()[0] < 100


def test_a_big_dedupe_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    big_session(migrated_db, 7, pairs=PAIRS // 2)
    connection = sqlite3.connect(migrated_db)
    with connection:  # every pair twice: half of the session goes
        connection.execute(
            "INSERT INTO scraped_pairs (session_id, input_text, output_text)"
            " SELECT session_id, input_text, output_text FROM scraped_pairs WHERE session_id = 7 ORDER BY id"
        )
        connection.execute("UPDATE scrape_sessions SET pair_count = ? WHERE id = 7", (PAIRS,))
    connection.close()
    result, events = beside_the_desktop(migrated_db, slowed(migrated_db, "manage", "dedupe_pairs", "7"))
    assert result.returncode == 0, result.stderr
    assert f"Removed {PAIRS // 2:,} duplicate pairs from 1 session." in result.stdout
    assert_the_desktop_never_failed(events)
    connection = check_database(migrated_db)  # integrity ok, every pair_count exact
    assert connection.execute(
        "SELECT COUNT(*), COUNT(DISTINCT input_text) FROM scraped_pairs WHERE session_id = 7"
    ).fetchone() == (PAIRS // 2, PAIRS // 2)
    connection.close()


def test_a_big_merge_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    big_session(migrated_db, 7, pairs=PAIRS // 2)
    big_session(migrated_db, 8, pairs=PAIRS // 2)
    merge = "from storage import api; print(api.merge_sessions([7, 8], mode='interleave'))"
    merged = int(shell_beside_the_desktop(migrated_db, merge)[-1])
    connection = check_database(migrated_db)
    assert connection.execute("SELECT COUNT(*) FROM scraped_pairs WHERE session_id = ?", (merged,)).fetchone() == (
        PAIRS,
    )
    assert connection.execute("SELECT COUNT(*) FROM storage_imports_in_progress").fetchone() == (0,)
    connection.close()


def test_catching_up_the_search_index_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    big_session(migrated_db, 7, pairs=PAIRS // 2)  # written with plain SQL, as the desktop does: not indexed yet
    catch_up = "from storage.search import index; print('indexed', index.index_pending())"
    # Slowed more than the others: its transactions are short anyway, and what failed here (10 ms pauses,
    # shorter than a waiting writer's 100 ms between retries) failed reliably only on a slower machine.
    assert int(shell_beside_the_desktop(migrated_db, catch_up, ops="200")[-1]) >= PAIRS // 2
    connection = check_database(migrated_db)
    highest, mark = connection.execute(
        "SELECT (SELECT max(id) FROM scraped_pairs WHERE session_id = 7), indexed_through FROM scraped_pairs_fts_state"
    ).fetchone()
    assert mark >= highest
    connection.close()


def test_near_duplicate_signing_and_its_band_merge_never_make_the_desktop_wait_out_its_timeout(migrated_db):
    signed = 20_000
    big_session(migrated_db, 7, signed - 1_000, texts=UNRELATED)
    big_session(migrated_db, 8, 1_000, texts=UNRELATED)
    # Session 7's 304,000 band rows stay in the small table of recent rows (under the limit set here);
    # session 8's 16,000 pass it, and all 320,000 are merged into the big table. What failed here:
    # fixed write transactions of 200,000 band rows.
    sign = (
        "from storage.services import near_duplicates as n; n.RECENT_LIMIT = 310_000;"
        " n.find_near_duplicates(session_ids=[7], against_stored=False);"
        " print('clusters', len(n.find_near_duplicates(session_ids=[8]).clusters))"
    )
    assert shell_beside_the_desktop(migrated_db, sign)[-2:] == ["clusters", "0"]
    connection = check_database(migrated_db)
    big, recent, signatures = connection.execute(
        "SELECT (SELECT count(*) FROM storage_pair_bands), (SELECT count(*) FROM storage_pair_bands_recent),"
        " (SELECT count(*) FROM storage_pair_signatures)"
    ).fetchone()
    assert big >= signed * 16  # the merge ran
    assert signatures >= signed  # with the desktop's pairs signed meanwhile in the second run
    assert big + recent == signatures * 16  # every signed pair's 16 band keys, none lost or doubled
    connection.close()


def test_merging_recent_band_rows_into_a_big_band_table_never_makes_the_desktop_wait_out_its_timeout(migrated_db):
    # The band tables filled directly (the merge reads nothing else): 800,000 rows in the big table,
    # 300,000 recent ones spread over its keys, as after 18,750 pairs signed in small sessions. In one
    # transaction, as it was, this merge held the lock for well over 5 s (for 50 s at 800,000 rows).
    connection = sqlite3.connect(migrated_db)
    with connection:
        for table, rows, first_pair in (
            ("storage_pair_bands", 800_000, 1),
            ("storage_pair_bands_recent", 300_000, 10**7),
        ):
            connection.execute(
                "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)"
                f" INSERT INTO {table} (band, hash, pair_id) SELECT i % 16, random(), ? + i / 16 FROM n",
                (rows, first_pair),
            )
    connection.close()
    merge = (
        "from django.db import connection; from storage.services import near_duplicates as n;"
        " print('merged', n._merge_recent_bands(connection, limit=0))"
    )
    assert shell_beside_the_desktop(migrated_db, merge)[-2:] == ["merged", "True"]
    connection = check_database(migrated_db)
    assert connection.execute(
        "SELECT (SELECT count(*) FROM storage_pair_bands), (SELECT count(*) FROM storage_pair_bands_recent)"
    ).fetchone() == (1_100_000, 0)
    connection.close()


def test_re_signing_edited_pairs_and_removing_signed_pairs_never_make_the_desktop_wait_out_its_timeout(migrated_db):
    signed = 20_000
    big_session(migrated_db, 7, signed, texts=UNRELATED)
    setup = manage(
        migrated_db,
        "shell",
        "-c",
        "from storage.services import near_duplicates as n; n.find_near_duplicates(session_ids=[7], against_stored=False)",
        timeout=600,
    )
    assert setup.returncode == 0, setup.stderr
    # Half the pairs edited the desktop's way: their stored signatures are stale, and the next
    # lookup forgets them (10,000 pairs: 320,000 band-row deletes) before it signs them again.
    # What failed here: that forgetting, then the removal of all 20,000 signed pairs, each in
    # one transaction.
    connection = sqlite3.connect(migrated_db)
    with connection:
        connection.execute("UPDATE scraped_pairs SET output_text = output_text || ' edited' WHERE id % 2 = 0")
    connection.close()
    work = (
        "from storage.models import ScrapedPair; from storage.services import near_duplicates as n;"
        " print('clusters', len(n.find_near_duplicates(session_ids=[7], against_stored=False).clusters));"
        " ids = list(ScrapedPair.objects.filter(session_id=7).values_list('id', flat=True));"
        " print('removed', n.remove_pairs(pair_ids=ids)[7])"
    )
    assert shell_beside_the_desktop(migrated_db, work)[-4:] == ["clusters", "0", "removed", str(signed)]
    connection = check_database(migrated_db)
    assert connection.execute(
        "SELECT (SELECT pair_count FROM scrape_sessions WHERE id = 7), (SELECT count(*) FROM scraped_pairs"
        " WHERE session_id = 7), (SELECT count(*) FROM storage_pair_signatures s JOIN scraped_pairs p ON p.id = s.pair_id"
        " WHERE p.session_id = 7)"
    ).fetchone() == (0, 0, 0)
    # Every band row left belongs to a stored signature (the desktop's own pairs signed meanwhile):
    # none of session 7's rows stayed behind.
    (signatures,) = connection.execute("SELECT count(*) FROM storage_pair_signatures").fetchone()
    assert connection.execute(
        "SELECT (SELECT count(*) FROM storage_pair_bands) + (SELECT count(*) FROM storage_pair_bands_recent)"
    ).fetchone() == (signatures * 16,)
    connection.close()


def start_slowed_delete_and_kill_half_way(db: Path, session_id: int) -> None:
    job = slowed(db, "delete", str(session_id))
    watcher = sqlite3.connect(db)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            (count,) = watcher.execute("SELECT pair_count FROM scrape_sessions WHERE id = ?", (session_id,)).fetchone()
            if count < PAIRS // 2:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the delete never got half way")
    finally:
        watcher.close()
    job.send_signal(signal.SIGKILL)
    job.communicate(timeout=60)


def visible_through_the_api(db: Path, session_id: int) -> str:
    code = f"from storage import api; print(api.get_scrape_session({session_id}), api.list_scrape_sessions(limit=100))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, env=child_env(db), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("finisher", ["doctor --fix", "delete again"])
def test_a_delete_killed_half_way_leaves_the_session_hidden_until_it_is_finished(migrated_db, finisher):
    big_session(migrated_db, 7)
    big_session(migrated_db, 8, pairs=10)
    start_slowed_delete_and_kill_half_way(migrated_db, 7)

    connection = check_database(migrated_db)  # integrity ok, pair_count exact at the last commit
    (left,) = connection.execute("SELECT COUNT(*) FROM scraped_pairs WHERE session_id = 7").fetchone()
    assert 0 < left < PAIRS
    assert connection.execute("SELECT state FROM storage_imports_in_progress").fetchall() == [("deleting",)]
    connection.close()
    seen = visible_through_the_api(migrated_db, 7)
    assert seen.startswith("None ")  # not visible half-deleted
    assert "'id': 8" in seen and "'id': 7" not in seen

    doctor = manage(migrated_db, "doctor", "--check", "imports")
    assert doctor.returncode == 1
    assert "a delete of session 7" in doctor.stdout

    if finisher == "doctor --fix":
        fixed = manage(migrated_db, "doctor", "--fix", "--check", "imports")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert "deleted" in fixed.stdout
    else:
        again = subprocess.run(
            [sys.executable, "-c", "from storage import api; print(api.delete_scrape_session(7))"],
            cwd=PROJECT_ROOT,
            env=child_env(migrated_db),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert again.stdout.strip() == "True", again.stderr

    connection = check_database(migrated_db)
    assert connection.execute("SELECT COUNT(*) FROM scraped_pairs WHERE session_id = 7").fetchone() == (0,)
    assert connection.execute("SELECT COUNT(*) FROM scrape_sessions WHERE id = 7").fetchone() == (0,)
    assert connection.execute("SELECT pair_count FROM scrape_sessions WHERE id = 8").fetchone() == (10,)
    assert connection.execute("SELECT COUNT(*) FROM storage_imports_in_progress").fetchone() == (0,)
    assert manage(migrated_db, "doctor", "--check", "imports").returncode == 0


@pytest.mark.parametrize("generation", ["current"])
def test_an_adopted_desktop_file_is_vacuumed_in_full_only_when_asked_then_incrementally(tmp_path, generation):
    db = load_desktop_fixture(generation, tmp_path / "finefoundry.db")
    assert manage(db, "migrate", "--no-input", "-v", "0").returncode == 0
    many_logs(db, 20_000)
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    connection.close()

    refused = manage(db, "clear_logs", "--level", "DEBUG", "--vacuum")
    assert refused.returncode == 0, refused.stderr
    assert "needs a one-time full VACUUM" in refused.stdout
    assert "blocks every other writer" in refused.stdout and "--vacuum-full" in refused.stdout
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA auto_vacuum").fetchone() == (0,)
    assert connection.execute("PRAGMA freelist_count").fetchone()[0] > 0
    connection.close()

    full = manage(db, "clear_logs", "--level", "DEBUG", "--vacuum-full")
    assert full.returncode == 0, full.stderr
    assert "full VACUUM" in full.stdout and "incremental auto-vacuum" in full.stdout
    connection = sqlite3.connect(db)
    assert connection.execute("PRAGMA auto_vacuum").fetchone() == (2,)
    assert connection.execute("PRAGMA freelist_count").fetchone() == (0,)
    connection.close()

    # From now on --vacuum works in short steps, and the desktop's SQL works on the file as before.
    desktop = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "helpers" / "desktop_writer.py"), str(db), "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert '"error"' not in desktop.stdout and desktop.returncode == 0, desktop.stdout + desktop.stderr
    many_logs(db, 20_000)
    again = manage(db, "clear_logs", "--level", "DEBUG", "--vacuum")
    assert "free pages to the filesystem in" in again.stdout
    check_database(db)
