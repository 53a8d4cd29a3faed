"""Fixtures shared by the annotation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

SAD_SAMPLE = Path(__file__).resolve().parents[2] / "pipelines" / "sad" / "sample"


@pytest.fixture(scope="session")
def spec(tmp_path_factory):
    """The SAD recipe's spec over the bundled sample, built once (a test module may define its own)."""
    from annotation.recipes.sad import sad_recipe
    from pipelines.sad.pipeline import build_sad, read_candidate
    from pipelines.sad.settings import SadSettings

    stages = tmp_path_factory.mktemp("sad") / "stages"
    build_sad([SAD_SAMPLE / "reddit"], SadSettings(), stages)
    tables = read_candidate(stages)
    return sad_recipe(tables["dialogues"], tables["utterances"])
