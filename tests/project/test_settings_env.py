"""Numeric settings read from the environment: a bad value stops the process with an error naming it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.processes import PROJECT_ROOT


def gunicorn_check(**variables: str) -> subprocess.CompletedProcess:
    """gunicorn loading the project's config, as `tasks.py serve` does, and stopping after the check."""
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "finefoundry/gunicorn_conf.py", "--check-config"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"FINEFOUNDRY_WORKERS": "many"}, "FINEFOUNDRY_WORKERS must be a whole number, not 'many'"),
        ({"FINEFOUNDRY_WORKERS": "0"}, "FINEFOUNDRY_WORKERS must be at least 1, not 0"),
        ({"FINEFOUNDRY_TIMEOUT": "2m"}, "FINEFOUNDRY_TIMEOUT must be a whole number, not '2m'"),
    ],
)
def test_the_server_refuses_a_bad_number_and_names_the_variable(variables, error):
    result = gunicorn_check(**variables)
    assert result.returncode != 0
    assert error in result.stderr + result.stdout


def test_the_server_takes_good_numbers():
    result = gunicorn_check(FINEFOUNDRY_WORKERS=" 3 ", FINEFOUNDRY_TIMEOUT="")  # spaces trimmed, empty: the default
    assert result.returncode == 0, result.stderr
