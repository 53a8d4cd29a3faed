"""Settings of the SAD pipeline: every construction rule is a documented setting.

The defaults reproduce the rules of the SAD construction (see ``docs/sad.md``). The
``[sad]`` section of ``corpusforge.toml`` overrides them; unknown keys are errors.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SadRules(_Strict):
    """How Reddit nodes become utterances and dialogues."""

    subreddit: str = Field("changemyview", description="Subreddit kept (compared case-insensitively).")
    # Topic: the submission title without a leading "CMV:" / "CMV -" (any case), whitespace collapsed.
    topic_prefix_pattern: str = Field(
        r"(?i)^\s*cmv\s*(?::|-)\s*",
        description="Regex removed from the start of the title to make the topic.",
    )
    unescape_title_entities: bool = Field(
        True, description="Unescape HTML entities in titles (Reddit escapes &, <, > in titles as in bodies)."
    )
    # The moderators' footnote: everything from the last line made only of underscores.
    strip_footnote: bool = Field(True, description="Drop the moderators' footnote from the submission text.")
    footnote_min_underscores: int = Field(3, ge=1, description="A footnote line has at least this many underscores.")
    # Cleaning of every utterance, in this order.
    unescape_html: bool = True
    drop_quote_lines: bool = Field(True, description="Remove lines whose first non-blank character is '>'.")
    url_placeholder: str | None = Field("<url>", description="Replacement of URLs; null keeps URLs.")
    # Validity.
    invalid_texts: tuple[str, ...] = ("[deleted]", "[removed]")
    deleted_author: str = "[deleted]"
    bots: tuple[str, ...] = ("DeltaBot", "AutoModerator")
    invalid_distinguished: tuple[str, ...] = ("moderator",)
    min_words: int = Field(10, ge=0, description="Utterances with fewer words are invalid.")
    # Dialogues.
    min_utterances: int = Field(3, ge=2, description="Shortest chain kept (root + challenger + OP reply).")


class SadSplits(_Strict):
    """Splits by topic: a deterministic hash decides; submissions sharing a topic share a split."""

    train: float = Field(0.8, ge=0, le=1)
    validation: float = Field(0.1, ge=0, le=1)
    test: float = Field(0.1, ge=0, le=1)
    salt: str = Field("sad-splits-v1", description="Changing it reshuffles topics between splits.")

    @model_validator(mode="after")
    def _sum_to_one(self) -> "SadSplits":
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"sad.splits: train + validation + test must be 1, got {total:g}")
        return self


class SadSources(_Strict):
    """How input files are read."""

    on_truncated: Literal["error", "quarantine"] = Field(
        "error",
        description="A truncated compressed file stops the build (error) or keeps its complete lines (quarantine).",
    )
    partitions: int | Literal["auto"] = Field(
        "auto", description="Submission buckets; auto sizes them so that a bucket fits comfortably in memory."
    )
    # pipelines.core.readers.CHUNK_BYTES (not imported: this module stays light), under 32 MB
    chunk_bytes: int = Field(30 * 1024 * 1024, ge=1024, description="Decompressed bytes parsed per batch (keep it under 32 MB: see pipelines/core/readers.py).")
    parse_threads: int = Field(0, ge=0, description="Threads parsing batches in parallel; 0 = one per core.")
    max_expansion: int = Field(
        500, ge=0, description="A compressed dump expanding more than this many times is refused as a decompression bomb; 0 = no limit."
    )
    # Published release (sent.json + argument.json).
    published_strategy_field: str | None = Field(
        None, description="Field of argument.json holding strategy labels per context item, if any."
    )


class SadSuggester(_Strict):
    """The rule-based strategy pre-annotator (suggestions only, never human labels)."""

    threshold: float = Field(0.5, ge=0, le=1, description="A strategy is suggested when its score reaches this.")


class SadValidationBounds(_Strict):
    """Row-count bounds checked by `corpusforge validate sad`."""

    min_dialogues: int = 1
    max_dialogues: int | None = None
    min_utterances: int = 1
    max_utterances: int | None = None
    min_topics: int = 1
    max_topics: int | None = None


class SadSettings(_Strict):
    rules: SadRules = SadRules()
    splits: SadSplits = SadSplits()
    sources: SadSources = SadSources()
    suggester: SadSuggester = SadSuggester()
    validation: SadValidationBounds = SadValidationBounds()


def only(settings: SadSettings, *sections: str) -> SadSettings:
    """The settings with every section but ``sections`` reset to defaults.

    A step gets only what it reads, so its fingerprint changes only when that changes (editing
    the validation bounds must not rebuild the dialogues).
    """
    defaults = SadSettings()
    return settings.model_copy(
        update={name: getattr(defaults, name) for name in SadSettings.model_fields if name not in sections}
    )
