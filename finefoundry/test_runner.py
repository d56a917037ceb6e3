"""`manage.py test` runs the project's real test suite: pytest, as `python3 tasks.py test` runs it.

Django's own runner finds no test here (the suite is pytest functions) and would report "Found 0
test(s) … OK": a false pass. This runner starts pytest in a child process, so the suite gets its own
settings (`finefoundry.settings_test`, from pyproject.toml) rather than the ones manage.py loaded, and
exits with pytest's status.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.core.management import CommandError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class PytestRunner:
    """Pass the labels (files, `file::test`, directories) and -v / --failfast to pytest."""

    def __init__(self, *, verbosity: int = 1, failfast: bool = False, keyword: str | None = None, **kwargs) -> None:
        self.verbosity = verbosity
        self.failfast = failfast
        self.keyword = keyword

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--failfast", action="store_true", help="Stop at the first failure (pytest -x).")
        parser.add_argument("-k", dest="keyword", help="Only tests whose names match this expression (pytest -k).")

    def pytest_arguments(self, test_labels: list[str]) -> list[str]:
        arguments = ["-c", str(PROJECT_ROOT / "pyproject.toml"), "--rootdir", str(PROJECT_ROOT)]
        if self.verbosity >= 2:
            arguments.append("-v")
        elif self.verbosity == 0:
            arguments.append("-q")
        if self.failfast:
            arguments.append("-x")
        if self.keyword:
            arguments += ["-k", self.keyword]
        return [*arguments, *test_labels]

    def run_tests(self, test_labels) -> int:
        try:
            import pytest  # noqa: F401
        except ImportError as exc:
            raise CommandError(
                "The test suite runs on pytest, which is not installed here: run `python3 tasks.py test` "
                "(it installs requirements-dev.txt first)."
            ) from exc
        env = dict(os.environ)
        # manage.py set the production settings; the suite's own come from pyproject.toml.
        env.pop("DJANGO_SETTINGS_MODULE", None)
        command = [sys.executable, "-m", "pytest", *self.pytest_arguments(list(test_labels))]
        status = subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode
        if status:
            # Django's test command only knows "failed" (exit 1); pytest's own status says more.
            sys.exit(status)
        return 0
