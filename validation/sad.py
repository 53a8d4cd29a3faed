"""Validation of a SAD release candidate: schema checks plus the dataset rules, run by GX.

Every rule is one named check (one GX expectation) whose failing rows are named by id. Rules that
need joins or list arithmetic are computed in polars as indicator columns (true/false per row,
null where an input is null: the not-null check of that input reports it, so one fault fails one
check); GX then checks the indicators, and every list column is checked as an exploded frame.

Checks, besides those derived from the schemas (``Table.column_checks()``: ids not null and
unique, labels in range, splits in the three names, strategy lists' elements in range(5)...):

* ``utterances.text.min_words``: words of ``text`` recounted with ``count_words`` >= min_words
  (replaces the schema's ``n_words >= 10``, which trusted the stored count);
* ``utterances.n_words.matches_text``: ``n_words`` equals the recount;
* ``utterances.split.matches_submission``: an utterance's split is its submission's (topics row);
* ``dialogues.history.stance.in_set``: every history turn's stance in {0, 1} (exploded);
* ``dialogues.context_ids.exist``: every context id is an utterance id;
* ``dialogues.target_id.is_last_context_id``;
* ``dialogues.n_turns.matches_context``: ``n_turns == len(context_ids)``;
* ``dialogues.history.matches_n_turns``: ``len(history) == n_turns - 1``;
* ``dialogues.split.matches_topic``: a dialogue's split is its topic's (topics row);
* ``topics.topic_key.one_split``: submissions sharing a topic_key share a split;
* ``<table>.row_count``: within :class:`~pipelines.sad.settings.SadValidationBounds`.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from pipelines.core.text import count_words_expr  # the polars twin of count_words (same definition)
from pipelines.sad.settings import SadValidationBounds
from schemas.sad import DIALOGUES, STANCE, TOPICS, UTTERANCES
from validation.gx_suite import CheckSpec, GXFrame, TableChecks, explode_list, row_count_spec, table_checks, validate_checks
from validation.report import ValidationReport

__all__ = ["validate_sad", "sad_checks"]

TABLE_ORDER = ("topics", "dialogues", "utterances")
# Replaced by the recount from text (utterances.text.min_words and utterances.n_words.matches_text).
SKIPPED_SCHEMA_CHECKS = frozenset({"utterances.n_words.between"})


def _rule(name: str, table: str, frame: str, column: str, description: str) -> CheckSpec:
    """A boolean indicator column that must be true (null: not judged here)."""
    kwargs = {"column": column, "value_set": [True]}
    return CheckSpec(name, table, frame, "ExpectColumnValuesToBeInSet", kwargs, description)


def _topic_splits(topics: pl.DataFrame) -> pl.DataFrame:
    """submission_id -> split of the topics table (one row per submission id)."""
    return (
        topics.select("submission_id", pl.col("split").alias("_topic_split"))
        .filter(pl.col("submission_id").is_not_null())
        .unique("submission_id", keep="first", maintain_order=True)
    )


def _utterance_indicators(utt: pl.DataFrame, topics: pl.DataFrame) -> pl.DataFrame:
    words = count_words_expr(pl.col("text"))  # == count_words(text) row by row; null for a null text
    out = utt.with_columns(words.alias("words_in_text")).with_columns(
        (pl.col("n_words") == pl.col("words_in_text")).alias("n_words_matches_text"),
    )
    out = out.join(_topic_splits(topics), on="submission_id", how="left", maintain_order="left")
    return out.with_columns(
        pl.when(pl.col("split").is_null())
        .then(None)
        .otherwise(pl.col("split") == pl.col("_topic_split").fill_null("<no such topic>"))
        .alias("split_matches_submission")
    ).drop("_topic_split")


def _dialogue_indicators(dia: pl.DataFrame, utterance_ids: pl.Series, topics: pl.DataFrame) -> pl.DataFrame:
    dia = dia.with_row_index("_row")
    # every context id exists: explode, look up, fold back (null/empty lists give null: not judged)
    exploded = (
        dia.select("_row", "context_ids")
        .filter(pl.col("context_ids").list.len() > 0)
        .explode("context_ids")
        .with_columns(pl.col("context_ids").is_in(utterance_ids.drop_nulls().implode()).fill_null(False).alias("_ok"))
        .group_by("_row")
        .agg(pl.col("_ok").all().alias("context_ids_exist"))
    )
    out = dia.join(exploded, on="_row", how="left", maintain_order="left")
    out = out.join(_topic_splits(topics), on="submission_id", how="left", maintain_order="left")
    n_ctx = pl.col("context_ids").list.len()
    return out.with_columns(
        (pl.col("context_ids").list.last() == pl.col("target_id")).alias("target_is_last_context_id"),
        (pl.col("n_turns") == n_ctx).alias("n_turns_matches_context"),
        (pl.col("history").list.len() == pl.col("n_turns") - 1).alias("history_matches_n_turns"),
        pl.when(pl.col("split").is_null())
        .then(None)
        .otherwise(pl.col("split") == pl.col("_topic_split").fill_null("<no such topic>"))
        .alias("split_matches_topic"),
    ).drop("_row", "_topic_split")


def _topic_indicators(topics: pl.DataFrame) -> pl.DataFrame:
    return topics.with_columns(
        (pl.col("split").n_unique().over("topic_key") == 1).alias("topic_key_one_split"),
    )


def sad_checks(tables: dict[str, pl.DataFrame], bounds: SadValidationBounds, min_words: int = 10) -> TableChecks:
    """Specs and GX frames of every SAD check (no GX import: plain polars)."""
    missing = [t for t in TABLE_ORDER if t not in tables]
    if missing:
        raise ValueError(f"SAD candidate lacks tables {missing}; it has {sorted(tables)}")
    utt, dia, top = tables["utterances"], tables["dialogues"], tables["topics"]

    utt_x = _utterance_indicators(utt, top)
    dia_x = _dialogue_indicators(dia, utt.get_column("utterance_id"), top)
    top_x = _topic_indicators(top)

    checks = TableChecks()
    # topics
    checks.extend(table_checks(TOPICS, top_x, extra_columns=["topic_key_one_split"]))
    checks.specs += [
        _rule(
            "topics.topic_key.one_split", "topics", "topics", "topic_key_one_split",
            "submissions sharing a topic_key are in one split (no topic in two splits)",
        ),
        row_count_spec("topics", bounds.min_topics, bounds.max_topics),
    ]
    # dialogues
    dia_extra = [
        "context_ids_exist", "target_is_last_context_id", "n_turns_matches_context",
        "history_matches_n_turns", "split_matches_topic",
    ]
    checks.extend(table_checks(DIALOGUES, dia_x, extra_columns=dia_extra))
    history_stance = explode_list(
        dia.select("example_id", pl.col("history").list.eval(pl.element().struct.field("stance"))),
        "example_id", "history", element="stance",
    )
    checks.frames["dialogues.history"] = GXFrame("dialogues.history", history_stance, "example_id")
    stances = list(range(len(STANCE.names)))
    stance_names = "{" + ", ".join(f"{i}={n}" for i, n in enumerate(STANCE.names)) + "}"
    checks.specs += [
        CheckSpec(
            "dialogues.history.stance.in_set", "dialogues", "dialogues.history", "ExpectColumnValuesToBeInSet",
            {"column": "stance", "value_set": stances}, f"every history turn's stance in {stance_names}",
        ),
        _rule("dialogues.context_ids.exist", "dialogues", "dialogues", "context_ids_exist",
              "every context id is an utterance id"),
        _rule("dialogues.target_id.is_last_context_id", "dialogues", "dialogues", "target_is_last_context_id",
              "target_id is the last context id"),
        _rule("dialogues.n_turns.matches_context", "dialogues", "dialogues", "n_turns_matches_context",
              "n_turns == len(context_ids)"),
        _rule("dialogues.history.matches_n_turns", "dialogues", "dialogues", "history_matches_n_turns",
              "len(history) == n_turns - 1"),
        _rule("dialogues.split.matches_topic", "dialogues", "dialogues", "split_matches_topic",
              "split equals its topic's split (topics row of submission_id)"),
        row_count_spec("dialogues", bounds.min_dialogues, bounds.max_dialogues),
    ]
    # utterances
    utt_extra = ["words_in_text", "n_words_matches_text", "split_matches_submission"]
    checks.extend(table_checks(UTTERANCES, utt_x, extra_columns=utt_extra, skip=SKIPPED_SCHEMA_CHECKS))
    checks.specs += [
        CheckSpec(
            "utterances.text.min_words", "utterances", "utterances", "ExpectColumnValuesToBeBetween",
            {"column": "words_in_text", "min_value": min_words, "max_value": None},
            f"text has >= {min_words} words (recounted from text)",
        ),
        _rule("utterances.n_words.matches_text", "utterances", "utterances", "n_words_matches_text",
              "n_words equals the words recounted from text"),
        _rule("utterances.split.matches_submission", "utterances", "utterances", "split_matches_submission",
              "split equals its submission's split (topics row of submission_id)"),
        row_count_spec("utterances", bounds.min_utterances, bounds.max_utterances),
    ]
    return checks


def validate_sad(
    tables: dict[str, pl.DataFrame],
    bounds: SadValidationBounds,
    out_dir: Path,
    min_words: int = 10,
    *,
    id_mode: str = "auto",
    data_docs: bool = True,
) -> ValidationReport:
    """Validate a SAD candidate; write results.json, summary.json, report.html and Data Docs.

    ``tables`` holds the ``utterances``, ``dialogues`` and ``topics`` polars frames with every
    schema column (working columns such as ``author`` are ignored: released columns are checked).
    ``id_mode`` is how GX names failing rows (see :func:`validation.gx_suite.run_checks`);
    ``data_docs=False`` skips the Data Docs site (``report.data_docs_index`` is then None).
    """
    t0 = time.perf_counter()
    checks = sad_checks(tables, bounds, min_words)
    t_prepare = time.perf_counter() - t0
    # report in table order, schema checks first
    return validate_checks(
        checks, out_dir, dataset="SAD", name="sad", counts={t: tables[t].height for t in TABLE_ORDER},
        table_order=TABLE_ORDER, id_mode=id_mode, data_docs=data_docs, prepare_seconds=t_prepare, started=t0,
    )
