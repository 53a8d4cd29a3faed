"""Test-wide settings: offline, quiet, and paths to bundled data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
SAD_SAMPLE = REPO / "pipelines" / "sad" / "sample"


@pytest.fixture
def sad_sample() -> Path:
    return SAD_SAMPLE
