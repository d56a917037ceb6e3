"""Every call FineFoundry's source and tests make into `db` binds against our package's signatures.

tests/fixtures/finefoundry_db_calls.json lists them (file:line in SourceBox-LLC/FineFoundry, the
module the name was imported from, positional count, keyword names), read from its source.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path

import pytest

from .conftest import import_db_package

CALLS = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "finefoundry_db_calls.json").read_text())[
    "calls"
]


def test_the_fixture_covers_finefoundrys_application_code():
    app_calls = [call for call in CALLS if call["where"].startswith("src/")]
    assert len(app_calls) == 127  # the number the issue counted
    assert {call["where"].split(":")[0] for call in app_calls} >= {"src/main.py", "src/helpers/training.py"}


@pytest.mark.parametrize("call", CALLS, ids=[f"{c['where']}:{c['function']}" for c in CALLS])
def test_call_binds(call):
    import_db_package()
    module = importlib.import_module(call["module"])
    function = getattr(module, call["function"], None)
    assert function is not None, f"{call['module']}.{call['function']} is missing ({call['where']})"
    arguments = [object()] * call["positional"]
    keywords = dict.fromkeys(call["keywords"])
    inspect.signature(function).bind(*arguments, **keywords)


def test_every_name_finefoundrys_db_package_exports_is_there():
    package = import_db_package()
    assert all(hasattr(package, name) for name in package.__all__)
    assert len(package.__all__) == 42
