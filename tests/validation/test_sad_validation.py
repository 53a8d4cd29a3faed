"""validate_sad on small synthetic candidates: a valid one passes; each injected fault fails
exactly its check, naming exactly the injected ids. Real Great Expectations runs (no mocks)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pipelines.core.text import count_words
from pipelines.sad.settings import SadValidationBounds
from pipelines.sad.synthetic import SAD_FULL_SIZE, sad_like_candidate, synthetic_candidate
from schemas.sad import TABLES
from validation.report import MAX_FAILING_IDS
from validation.sad import sad_checks, validate_sad

BOUNDS = SadValidationBounds()
RULE_CHECKS = {
    "topics.topic_key.one_split",
    "topics.row_count",
    "dialogues.history.stance.in_set",
    "dialogues.context_ids.exist",
    "dialogues.target_id.is_last_context_id",
    "dialogues.n_turns.matches_context",
    "dialogues.history.matches_n_turns",
    "dialogues.split.matches_topic",
    "dialogues.row_count",
    "utterances.text.min_words",
    "utterances.n_words.matches_text",
    "utterances.split.matches_submission",
    "utterances.row_count",
}


@pytest.fixture(scope="module")
def base() -> dict[str, pl.DataFrame]:
    # 10 topics (8 train, 1 validation, 1 test), 50 dialogues, ~157 utterances, half labelled,
    # dialogues sharing prefixes: every code path with a handful of rows.
    return synthetic_candidate(10, 5, seed=7, labelled=0.5, branching=0.5)


def set_cell(df: pl.DataFrame, column: str, row: int, value: Any) -> pl.DataFrame:
    values = df.get_column(column).to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column]))


def with_table(tables: dict[str, pl.DataFrame], name: str, df: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {**tables, name: df}


def run(tables, tmp_path: Path, bounds: SadValidationBounds = BOUNDS, **kw):
    # Fault tests skip the Data Docs site (about a third of a small run); the valid-candidate
    # test and the report test build it.
    kw.setdefault("data_docs", False)
    return validate_sad(tables, bounds, tmp_path / "out", **kw)


def assert_only(report, check: str, ids: list[str]) -> None:
    failed = [c.name for c in report.checks if not c.success]
    assert report.success is False
    assert failed == [check], report.render_text()
    result = report.check(check)
    assert result.failing_ids == sorted(ids), report.render_text()


def row_of(df: pl.DataFrame, id_column: str, value: str) -> int:
    return df.get_column(id_column).to_list().index(value)


# --------------------------------------------------------------------------- valid candidate


def test_valid_candidate_passes_and_writes_every_artefact(base, tmp_path):
    report = run(base, tmp_path, data_docs=True)
    out = tmp_path / "out"
    assert report.success, report.render_text()
    assert all(c.success for c in report.checks)
    names = {c.name for c in report.checks}
    assert RULE_CHECKS <= names
    # schema-derived checks of every table are there
    for t in TABLES.values():
        assert f"{t.name}.{t.primary_key}.not_null" in names and f"{t.name}.{t.primary_key}.unique" in names
    assert {"utterances.strategies.elements_in_set", "dialogues.target_suggested_strategies.elements_in_set"} <= names
    assert "utterances.n_words.between" not in names  # replaced by the recount from text
    assert report.counts == {t: base[t].height for t in ("topics", "dialogues", "utterances")}

    for name in ("results.json", "summary.json", "report.html"):
        assert (out / name).is_file(), name
    assert report.data_docs_index.resolve() == (out / "data_docs" / "index.html").resolve()
    assert report.data_docs_index.is_file()
    assert list((out / "data_docs" / "validations").rglob("*.html")), "GX wrote no validation page"

    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(report.to_dict(), default=str))
    assert summary["success"] is True and summary["counts"]["dialogues"] == base["dialogues"].height

    results = json.loads((out / "results.json").read_text())
    assert results["success"] is True
    assert len(results["validation_results"]) == 8  # 3 tables + 5 exploded list frames
    assert all(r["success"] for r in results["validation_results"])

    page = (out / "report.html").read_text()
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "external URL in report.html"
    assert "http" not in page.lower()
    assert "<script" not in page.lower()
    assert page.count('class="pass"') >= len(report.checks)

    text = report.render_text()
    assert text.splitlines()[-2].startswith("VERDICT: PASS")
    assert len([line for line in text.splitlines() if line.startswith("  PASS")]) == len(report.checks)


def test_gx_frames_have_no_list_or_struct_columns(base):
    checks = sad_checks(base, BOUNDS)
    for frame in checks.frames.values():
        nested = [c for c, t in frame.df.schema.items() if isinstance(t, (pl.List, pl.Struct, pl.Array))]
        assert not nested, (frame.name, nested)
        assert frame.id_column in frame.df.columns
    # the word recount is count_words of the text, row by row
    utt = checks.frames["utterances"].df
    assert utt.get_column("words_in_text").to_list() == [count_words(t) for t in base["utterances"]["text"]]
    # the non-released column never reaches GX
    assert all("author" not in f.df.columns for f in checks.frames.values())


# --------------------------------------------------------------------------- one fault, one check


def test_duplicate_id(base, tmp_path):
    dia = base["dialogues"]
    dup = dia["example_id"][2]
    tables = with_table(base, "dialogues", set_cell(dia, "example_id", 3, dup))
    report = run(tables, tmp_path)
    assert_only(report, "dialogues.example_id.unique", [dup])
    assert report.check("dialogues.example_id.unique").unexpected_count == 2


def test_null_id(base, tmp_path):
    tables = with_table(base, "dialogues", set_cell(base["dialogues"], "example_id", 4, None))
    report = run(tables, tmp_path)
    assert_only(report, "dialogues.example_id.not_null", ["<null id: row 4>"])


def test_null_text_fails_only_not_null(base, tmp_path):
    utt = base["utterances"]
    uid = utt["utterance_id"][5]
    report = run(with_table(base, "utterances", set_cell(utt, "text", 5, None)), tmp_path)
    assert_only(report, "utterances.text.not_null", [uid])


def test_utterance_stance_2_and_the_reports_name_it(base, tmp_path):
    utt = base["utterances"]
    uid = utt["utterance_id"][7]
    report = run(with_table(base, "utterances", set_cell(utt, "stance", 7, 2)), tmp_path, data_docs=True)
    assert_only(report, "utterances.stance.in_set", [uid])
    assert report.data_docs_index is not None and report.data_docs_index.is_file()
    # text: one FAIL line naming the id, then the verdict
    text = report.render_text()
    lines = text.splitlines()
    fail = [i for i, line in enumerate(lines) if line.lstrip().startswith("FAIL")]
    assert len(fail) == 1 and "utterances.stance.in_set" in lines[fail[0]]
    assert uid in lines[fail[0] + 1] and "1 failing row;" in lines[fail[0] + 1]
    verdict = [line for line in lines if line.startswith("VERDICT")]
    assert verdict == [f"VERDICT: FAIL - 1 of {len(report.checks)} checks failed: utterances.stance.in_set"]
    # html and summary
    page = (tmp_path / "out" / "report.html").read_text()
    assert uid in page and "FAIL" in page and "http" not in page.lower()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["success"] is False and summary["n_failed"] == 1
    failed = [c for c in summary["checks"] if not c["success"]]
    assert failed[0]["name"] == "utterances.stance.in_set" and failed[0]["failing_ids"] == [uid]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["success"] is False


def test_target_stance_2(base, tmp_path):
    dia = base["dialogues"]
    ids = [dia["example_id"][1], dia["example_id"][9]]
    dia = set_cell(set_cell(dia, "target_stance", 1, 2), "target_stance", 9, 2)
    report = run(with_table(base, "dialogues", dia), tmp_path)
    assert_only(report, "dialogues.target_stance.in_set", ids)


def test_history_stance_3(base, tmp_path):
    dia = base["dialogues"]
    history = dia["history"][6].to_list()
    history[1] = {**history[1], "stance": 3}
    report = run(with_table(base, "dialogues", set_cell(dia, "history", 6, history)), tmp_path)
    assert_only(report, "dialogues.history.stance.in_set", [dia["example_id"][6]])


def test_strategy_index_7(base, tmp_path):
    utt = base["utterances"]
    uid = utt["utterance_id"][3]
    report = run(with_table(base, "utterances", set_cell(utt, "suggested_strategies", 3, [1, 7])), tmp_path)
    assert_only(report, "utterances.suggested_strategies.elements_in_set", [uid])
    assert report.check("utterances.suggested_strategies.elements_in_set").unexpected_count == 1


def test_human_strategy_index_7_in_target(base, tmp_path):
    dia = base["dialogues"]
    report = run(with_table(base, "dialogues", set_cell(dia, "target_strategies", 0, [7])), tmp_path)
    assert_only(report, "dialogues.target_strategies.elements_in_set", [dia["example_id"][0]])


def test_five_word_utterance(base, tmp_path):
    utt = base["utterances"]
    uid = utt["utterance_id"][10]
    utt = set_cell(set_cell(utt, "text", 10, "one two three four five"), "n_words", 10, 5)
    report = run(with_table(base, "utterances", utt), tmp_path)
    assert_only(report, "utterances.text.min_words", [uid])


def test_min_words_is_a_parameter(base):
    # wiring only (no GX run): the recount is checked against the given minimum
    spec = next(s for s in sad_checks(base, BOUNDS, min_words=5).specs if s.name == "utterances.text.min_words")
    assert spec.kwargs["min_value"] == 5 and spec.kwargs["column"] == "words_in_text"


def test_n_words_mismatch(base, tmp_path):
    utt = base["utterances"]
    uid = utt["utterance_id"][12]
    report = run(with_table(base, "utterances", set_cell(utt, "n_words", 12, utt["n_words"][12] + 1)), tmp_path)
    assert_only(report, "utterances.n_words.matches_text", [uid])


def _long_dialogue(dia: pl.DataFrame, min_turns: int = 4) -> int:
    return dia.with_row_index().filter(pl.col("n_turns") >= min_turns)["index"][0]


def test_missing_context_id(base, tmp_path):
    dia = base["dialogues"]
    i = _long_dialogue(dia)
    ctx = dia["context_ids"][i].to_list()
    ctx[1] = "t1_cmissing"
    report = run(with_table(base, "dialogues", set_cell(dia, "context_ids", i, ctx)), tmp_path)
    assert_only(report, "dialogues.context_ids.exist", [dia["example_id"][i]])


def test_target_not_last(base, tmp_path):
    dia = base["dialogues"]
    i = 11
    other = dia["context_ids"][i].to_list()[1]  # an existing utterance, but not the last
    report = run(with_table(base, "dialogues", set_cell(dia, "target_id", i, other)), tmp_path)
    assert_only(report, "dialogues.target_id.is_last_context_id", [dia["example_id"][i]])


def test_n_turns_not_len_context(base, tmp_path):
    dia = base["dialogues"]
    i = _long_dialogue(dia)
    ctx = dia["context_ids"][i].to_list()
    del ctx[1]  # still ends with the target, every id exists
    report = run(with_table(base, "dialogues", set_cell(dia, "context_ids", i, ctx)), tmp_path)
    assert_only(report, "dialogues.n_turns.matches_context", [dia["example_id"][i]])


def test_history_not_n_turns_minus_one(base, tmp_path):
    dia = base["dialogues"]
    i = 13
    history = dia["history"][i].to_list()[:-1]
    report = run(with_table(base, "dialogues", set_cell(dia, "history", i, history)), tmp_path)
    assert_only(report, "dialogues.history.matches_n_turns", [dia["example_id"][i]])


def test_topic_in_two_splits(base, tmp_path):
    top = base["topics"]
    a, b = 0, 8  # train and validation
    assert top["split"][a] != top["split"][b]
    report = run(with_table(base, "topics", set_cell(top, "topic_key", b, top["topic_key"][a])), tmp_path)
    assert_only(report, "topics.topic_key.one_split", [top["submission_id"][a], top["submission_id"][b]])


def test_dialogue_split_differs_from_topic(base, tmp_path):
    dia = base["dialogues"]
    assert dia["split"][2] == "train"
    report = run(with_table(base, "dialogues", set_cell(dia, "split", 2, "test")), tmp_path)
    assert_only(report, "dialogues.split.matches_topic", [dia["example_id"][2]])


def test_utterance_split_differs_from_submission(base, tmp_path):
    utt = base["utterances"]
    i = 20
    assert utt["split"][i] == "train"
    report = run(with_table(base, "utterances", set_cell(utt, "split", i, "validation")), tmp_path)
    assert_only(report, "utterances.split.matches_submission", [utt["utterance_id"][i]])


def test_row_count_above_max(base, tmp_path):
    n = base["dialogues"].height
    report = run(base, tmp_path, bounds=SadValidationBounds(max_dialogues=n - 1))
    assert_only(report, "dialogues.row_count", [])
    assert report.check("dialogues.row_count").details == f"observed {n}"
    assert report.check("dialogues.row_count").id_column is None


def test_row_counts_below_min_and_above_max(base, tmp_path):
    bounds = SadValidationBounds(min_utterances=base["utterances"].height + 1, max_topics=base["topics"].height - 1)
    report = run(base, tmp_path, bounds=bounds)
    assert [c.name for c in report.failed] == ["topics.row_count", "utterances.row_count"]
    assert all(c.failing_ids == [] for c in report.failed)
    # None = unbounded
    assert "between 1 and None" in report.check("dialogues.row_count").description


# --------------------------------------------------------------------------- reporting


def test_many_failures_keep_100_sorted_ids_and_both_id_modes_agree(base, tmp_path):
    utt = base["utterances"].with_columns(pl.col("n_words") + 1)  # every row fails
    tables = with_table(base, "utterances", utt)
    expected = sorted(utt["utterance_id"].to_list())[:MAX_FAILING_IDS]
    by_mode = {}
    for mode in ("columns", "index"):
        report = validate_sad(tables, BOUNDS, tmp_path / mode, id_mode=mode, data_docs=False)
        check = report.check("utterances.n_words.matches_text")
        assert [c.name for c in report.failed] == ["utterances.n_words.matches_text"]
        assert check.unexpected_count == utt.height > MAX_FAILING_IDS
        assert check.failing_ids == expected
        by_mode[mode] = check.failing_ids
    assert by_mode["columns"] == by_mode["index"]


# --------------------------------------------------------------------------- synthetic candidates


def test_synthetic_candidate_shape():
    plain = synthetic_candidate(6, 4, seed=3)
    assert plain["dialogues"].height == 24 and plain["topics"].height == 6
    for name, df in plain.items():
        assert df.schema == TABLES[name].polars_schema(), name
    # without branching every dialogue is its own thread: each comment is in one dialogue
    n_ctx = plain["dialogues"]["context_ids"].list.len().sum()
    assert plain["utterances"].height == 6 + n_ctx - plain["dialogues"].height
    # SAD-like: about 1.84 utterances per dialogue, chains sharing prefixes
    small = sad_like_candidate(0.02, seed=1)
    ratio = small["utterances"].height / small["dialogues"].height
    real = SAD_FULL_SIZE["utterances"] / SAD_FULL_SIZE["dialogues"]
    assert abs(ratio - real) / real < 0.05, ratio
    assert small["dialogues"].height == round(SAD_FULL_SIZE["dialogues"] * 0.02)
