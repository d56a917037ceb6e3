"""The vendored desktop fixtures are the shared ones, whenever ../shared is there to compare with."""

from __future__ import annotations

import pytest

from tests.helpers.desktop import DESKTOP_FIXTURES
from tests.helpers.processes import PROJECT_ROOT

SHARED = PROJECT_ROOT.parent / "shared" / "fixtures"


@pytest.mark.parametrize("generation", sorted(DESKTOP_FIXTURES))
def test_vendored_fixture_matches_the_shared_one(generation):
    shared = SHARED / DESKTOP_FIXTURES[generation].name
    if not shared.exists():
        pytest.skip(f"{shared} is not beside this clone")
    assert DESKTOP_FIXTURES[generation].read_bytes() == shared.read_bytes()
