"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_root() -> Path:
    """Root of the shared datasets (env ``UNROLLRECON_DATA``); skips the test when absent."""
    default = Path(__file__).parents[1] / ".." / "shared" / "datasets"
    root = Path(os.environ.get("UNROLLRECON_DATA", default)).resolve()
    if not root.is_dir():
        pytest.skip(f"shared datasets not found at {root}; set UNROLLRECON_DATA")
    return root


@pytest.fixture(autouse=True, scope="session")
def _ct_cache_dir(tmp_path_factory):
    """CT projectors built by tests go to a temporary cache, never the user's (physics/ct_cache)."""
    if "UNROLLRECON_CT_CACHE" not in os.environ:
        os.environ["UNROLLRECON_CT_CACHE"] = str(tmp_path_factory.mktemp("ct-cache"))
    yield
