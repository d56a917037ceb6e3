"""Real servers for tests: gunicorn (what `python3 tasks.py serve` runs) on a free loopback port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.helpers.processes import PROJECT_ROOT

GUNICORN_CONF = PROJECT_ROOT / "finefoundry" / "gunicorn_conf.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(db_env: dict[str, str], port: int, *, workers: int = 3, log: Path | None = None) -> subprocess.Popen:
    """Start gunicorn with the project's config on 127.0.0.1:`port`; return once it answers HTTP.

    `db_env` is the whole environment of the server (build it with tests.conftest.child_env, so
    it never reaches the user's database). Stop it with stop_server().
    """
    env = {**db_env, "FINEFOUNDRY_WORKERS": str(workers), "DJANGO_SECRET_KEY": "tests-only-secret-key"}
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - the server outlives this call
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "--bind", f"127.0.0.1:{port}"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode} before answering")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5).close()
            return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop_server(process)
    raise RuntimeError(f"gunicorn did not answer on port {port} within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def gunicorn(db_env: dict[str, str], **kwargs) -> Iterator[str]:
    """A running gunicorn for the duration of the block; yields its base URL."""
    port = free_port()
    process = start_gunicorn(db_env, port, **kwargs)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
