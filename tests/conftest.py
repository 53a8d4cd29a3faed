"""Test-wide settings: offline, quiet, and paths to bundled data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real Label Studio and argilla-server fixtures (label_studio_server, label_studio, argilla).
pytest_plugins = ["tests.servers"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SAD_SAMPLE = REPO / "pipelines" / "sad" / "sample"


@pytest.fixture
def sad_sample() -> Path:
    return SAD_SAMPLE


@pytest.fixture(scope="session")
def ray_owner():
    """One local Ray (2 CPUs) for the whole session, started on first use by a RayExecutor and
    shut down at the end: starting Ray costs about 9 s. Tests build their own ``RayExecutor()``,
    which uses the running instance."""
    from pipelines.core.ray_executor import RayExecutor

    owner = RayExecutor(num_cpus=2)
    ray = owner.connect()
    yield owner
    owner.close()
    assert not ray.is_initialized()
