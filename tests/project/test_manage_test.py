"""`manage.py test` runs the real pytest suite and exits with its status (it used to find 0 tests, "OK")."""

from __future__ import annotations

from tests.helpers.processes import manage

PASSING = "def test_passes():\n    assert 1 + 1 == 2\n"
FAILING = "def test_fails():\n    assert 1 + 1 == 3\n"


def test_a_real_test_file_passed_as_label_runs_under_pytest(tmp_path):
    result = manage(
        tmp_path / "unused.db", "test", "tests/admin/test_admin_logs.py::test_logger_filter", "--verbosity", "2"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_admin_logs.py::test_logger_filter PASSED" in result.stdout
    assert "1 passed" in result.stdout and "Found 0 test" not in result.stdout + result.stderr


def test_a_failing_test_makes_it_exit_with_pytests_status(tmp_path):
    (tmp_path / "test_sample.py").write_text(PASSING + FAILING, encoding="utf-8")
    result = manage(tmp_path / "unused.db", "test", str(tmp_path / "test_sample.py"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed, 1 passed" in result.stdout

    result = manage(tmp_path / "unused.db", "test", str(tmp_path / "test_sample.py"), "-k", "passes", "--failfast")
    assert result.returncode == 0 and "1 passed, 1 deselected" in result.stdout


def test_without_pytest_it_fails_loudly(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pytest.py").write_text('raise ImportError("No module named pytest")\n', encoding="utf-8")
    result = manage(tmp_path / "unused.db", "test", env={"PYTHONPATH": str(shadow)})
    assert result.returncode == 1
    assert "pytest, which is not installed" in result.stderr and "python3 tasks.py test" in result.stderr
