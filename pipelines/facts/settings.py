"""Settings of the fact-frequency pipeline (section ``[facts]`` of ``corpusforge.toml``).

Defaults: the matching semantics of :mod:`pipelines.core.phrases`, Dolma-style shards read as
described in :mod:`pipelines.facts.corpus`, no checkpoints. Unknown keys are errors.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.facts.corpus import CorpusSettings
from pipelines.core.phrases import MatchSettings


class FactsValidation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    facts_per_language: int | None = Field(
        1197, ge=0, description="Facts every language must have (KLAR: 1,197); null: any number, but equal across languages."
    )


class FactsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    corpus_name: str = Field("corpus", description="Name of the corpus, for the card and the plot (e.g. dolma-v1.7).")
    matching: MatchSettings = MatchSettings()
    corpus: CorpusSettings = CorpusSettings()
    checkpoints: tuple[int, ...] = Field(
        (), description="Training steps at which to report cumulative counts (documents with step <= checkpoint); "
        "needs the corpus's training order (corpus.step_field, or order_file)."
    )
    order_file: Path | None = Field(
        None, description="A data-order file mapping shard line ranges to training steps (CSV or JSONL: shard, first_line, last_line, step)."
    )
    validation: FactsValidation = FactsValidation()

    @field_validator("checkpoints")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if list(value) != sorted(set(value)):
            raise ValueError(f"checkpoints must be strictly increasing steps, got {list(value)}")
        return value
