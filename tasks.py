#!/usr/bin/env python3
"""The Quick start commands: `python3 tasks.py serve`, `python3 tasks.py dev` and `python3 tasks.py test`.

Only the Python standard library is used here, so this runs on a fresh machine with nothing
but Python 3.11: it makes .venv, installs the pinned requirements into it, then does the work.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(*args: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, env={**os.environ, **(env or {})})


def install(requirements: str) -> None:
    if not PYTHON.exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", ROOT / requirements)


def prepare() -> None:
    install("requirements.txt")
    run(PYTHON, "manage.py", "migrate", "--no-input")
    run(PYTHON, "manage.py", "ensure_admin")


# The background-jobs worker (django-tasks-db's db_worker). Idle, it looks for a queued job every 2 s in a
# transaction of a few milliseconds, so the desktop app's writers (5 s busy timeout) never wait on it for long.
WORKER = ("manage.py", "db_worker", "--no-startup-delay", "--interval", "2")


@contextlib.contextmanager
def worker(*options: str):
    """Run the jobs worker beside the server; stop it with the server (Ctrl+C reaches both)."""
    print("+ starting the background-jobs worker:", " ".join(WORKER + options), flush=True)
    process = subprocess.Popen([str(PYTHON), *WORKER, *options], cwd=ROOT)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve(extra: list[str]) -> None:
    """Install, migrate, make sure an admin account exists, and serve with gunicorn (several processes) and a worker."""
    prepare()
    address = (
        extra[0] if extra and not extra[0].startswith("-") else os.environ.get("FINEFOUNDRY_BIND", "127.0.0.1:8000")
    )
    rest = extra[1:] if extra and not extra[0].startswith("-") else extra
    print(f"\nFineFoundry Storage: http://{address}/admin/\n", flush=True)
    with worker("--no-reload"):
        run(PYTHON, "-m", "gunicorn", "-c", ROOT / "finefoundry" / "gunicorn_conf.py", "--bind", address, *rest)


def dev(extra: list[str]) -> None:
    """Like serve, but Django's single-process development server (and the worker), reloading on code changes."""
    prepare()
    address = extra[0] if extra and not extra[0].startswith("-") else "127.0.0.1:8000"
    print(f"\nFineFoundry Storage (development server): http://{address}/admin/\n", flush=True)
    with worker("--reload"):
        run(PYTHON, "manage.py", "runserver", *(extra or [address]))


def test(extra: list[str]) -> None:
    """Install what tests need, check lint and migrations, and run the whole suite."""
    install("requirements-dev.txt")
    run(PYTHON, "-m", "ruff", "check", ".")
    run(PYTHON, "-m", "ruff", "format", "--check", ".")
    # Checked against a throwaway database, never the user's finefoundry.db.
    with tempfile.TemporaryDirectory() as scratch:
        scratch_db = {"FINEFOUNDRY_DB": f"{scratch}/check.db"}
        run(PYTHON, "manage.py", "makemigrations", "--check", "--dry-run", env=scratch_db)
    run(PYTHON, "-m", "pytest", *extra)


def main() -> int:
    commands = {"serve": serve, "dev": dev, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(f"usage: python3 tasks.py {{{'|'.join(commands)}}} [arguments passed on]", file=sys.stderr)
        return 2
    try:
        commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
