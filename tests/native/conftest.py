"""The native engine for the cross-engine tests: skipped when the extension is not installed, except under
``TVOTE_REQUIRE_ALL=1`` (CI), where that fails."""

from __future__ import annotations

import os

import pytest

from crypto import native_available, select_engine
from crypto._native import NativeEngine


@pytest.fixture(scope="module")
def native() -> NativeEngine:
    if not native_available():
        why = "the native engine (tvote_native) is not installed: `make native` builds it"
        if os.environ.get("TVOTE_REQUIRE_ALL") == "1":
            pytest.fail(f"required (TVOTE_REQUIRE_ALL=1): {why}")
        pytest.skip(why)
    engine = select_engine("native")
    assert isinstance(engine, NativeEngine)
    return engine
