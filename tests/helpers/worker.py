"""A separate process that hammers storage the way FineFoundry does, for the reliability tests.

    python tests/helpers/worker.py ROLE --seconds S [--threads N] [--tag T]

FINEFOUNDRY_DB names the database. Every write is acknowledged only after the call returned,
in a JSON line on stdout, so the test can check that each acknowledged write is in the
database afterwards. Errors are reported, never swallowed. Roles:

  writer       threads add pairs, move runs through their statuses, save settings and log
  ingest       add big batches of pairs in a loop (to be killed half way)
  delete       create a big session, report it, then delete it (to be killed half way)
  stuck-run    start a run, report it, then hang as a trainer would until killed
  merge        merge every session into a new one, over and over (to be killed half way)
  admin        read admin pages as a logged-in superuser until the time is up
  export       export a 20,000-pair session to JSONL over and over until the time is up
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")

import django

django.setup()

from django.db import connections  # noqa: E402

from storage import api  # noqa: E402

log = logging.getLogger("finefoundry.reliability")
print_lock = threading.Lock()


def report(**event) -> None:
    with print_lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def pairs_batch(tag: str, start: int, size: int) -> list[dict]:
    return [{"input": f"{tag} q{start + i}", "output": f"{tag} a{start + i}", "n": start + i} for i in range(size)]


def writer_thread(tag: str, deadline: float) -> None:
    try:
        session_id = api.create_scrape_session("reliability", tag)
        report(event="session", session_id=session_id, tag=tag)
        batch = 0
        while time.monotonic() < deadline:
            added = api.add_scraped_pairs(session_id, pairs_batch(tag, batch * 50, 50))
            report(event="pairs", session_id=session_id, added=added)
            run = api.create_training_run(f"{tag}-run{batch}", "m", "database", session_id)
            api.update_training_run(run["id"], status="running")
            api.update_training_run(run["id"], status="completed", logs=[f"{tag} step {batch}"])
            report(event="run", run_id=run["id"], status="completed")
            api.set_setting(f"reliability.{tag}", batch)
            report(event="setting", key=f"reliability.{tag}", value=batch)
            log.info("%s batch %d", tag, batch)
            report(event="log", message=f"{tag} batch {batch}")
            batch += 1
    except Exception as exc:
        report(event="error", tag=tag, error=f"{type(exc).__name__}: {exc}")
    finally:
        connections.close_all()


def run_writer(args) -> None:
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=writer_thread, args=(f"{args.tag}-t{i}", deadline)) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for handler in logging.getLogger("finefoundry").handlers:
        handler.flush()
    report(event="flushed")


def run_ingest(args) -> None:
    session_id = api.create_scrape_session("reliability", args.tag)
    report(event="session", session_id=session_id)
    batch = 0
    while True:
        added = api.add_scraped_pairs(session_id, pairs_batch(args.tag, batch * 20_000, 20_000))
        report(event="pairs", session_id=session_id, added=added)
        batch += 1


def run_delete(args) -> None:
    session_id = api.create_scrape_session("reliability", args.tag)
    for batch in range(10):
        api.add_scraped_pairs(session_id, pairs_batch(args.tag, batch * 20_000, 20_000))
    report(event="ready", session_id=session_id, pairs=200_000)
    while True:
        api.delete_scrape_session(session_id)
        report(event="deleted", session_id=session_id)
        return


def run_stuck(args) -> None:
    run = api.create_training_run(args.tag, "m", "database", "1")
    api.update_training_run(run["id"], status="running")
    report(event="running", run_id=run["id"])
    time.sleep(3600)


def run_merge(args) -> None:
    from storage.models import ScrapeSession

    session_ids = list(ScrapeSession.objects.order_by("id").values_list("id", flat=True))
    report(event="ready", session_ids=session_ids)
    while True:
        merged = api.merge_sessions(session_ids, mode="interleave")
        report(event="merged", session_id=merged)


def run_admin(args) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_superuser(f"reader-{args.tag}", password=None)
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    pages = ["/admin/", "/admin/storage/scrapesession/", "/admin/storage/scrapedpair/", "/admin/storage/trainingrun/"]
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        for page in pages:
            status = client.get(page).status_code
            report(event="page", page=page, status=status)
            if status != 200:
                report(event="error", error=f"{page} answered {status}")


def run_export(args) -> None:
    from django.core.management import call_command

    session_id = api.create_scrape_session("reliability", args.tag)
    api.add_scraped_pairs(session_id, pairs_batch(args.tag, 0, 20_000))
    target = Path(os.environ["FINEFOUNDRY_DB"]).parent / f"{args.tag}.jsonl"
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        call_command("export_session", str(session_id), "--format", "jsonl", "-o", str(target), "--force", verbosity=0)
        lines = sum(1 for _ in target.open(encoding="utf-8"))
        report(event="exported", lines=lines)
        if lines != 20_000:
            report(event="error", error=f"export had {lines} lines")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["writer", "ingest", "delete", "stuck-run", "merge", "admin", "export"])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tag", default=f"p{os.getpid()}")
    args = parser.parse_args()
    roles = {
        "writer": run_writer,
        "ingest": run_ingest,
        "delete": run_delete,
        "stuck-run": run_stuck,
        "merge": run_merge,
        "admin": run_admin,
        "export": run_export,
    }
    roles[args.role](args)


if __name__ == "__main__":
    main()
