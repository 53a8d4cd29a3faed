"""The fast SAD pipeline against the hand-written expectations of the bundled sample, rule by
rule, and against the pure-Python reference build on generated dumps."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.reference import reference_build
from pipelines.sad.settings import SadSettings, SadSources
from tests.pipelines.sad.sample_expectations import SAMPLE_PATHS, check_against_expected, load_expected


@pytest.fixture(scope="module")
def sample_tables(tmp_path_factory) -> dict[str, pl.DataFrame]:
    stages = tmp_path_factory.mktemp("sample") / "stages"
    build_sad(SAMPLE_PATHS, SadSettings(), stages)
    return read_candidate(stages)


def _as_dicts(tables: dict[str, pl.DataFrame]):
    dialogues = dict(zip(tables["dialogues"]["example_id"], tables["dialogues"]["context_ids"].to_list()))
    texts = dict(zip(tables["utterances"]["utterance_id"], tables["utterances"]["text"]))
    topics = dict(zip(tables["topics"]["submission_id"], tables["topics"]["topic"]))
    return dialogues, texts, topics


def test_sample_matches_the_hand_written_expectations(sample_tables):
    problems = check_against_expected(*_as_dicts(sample_tables))
    assert not problems, "\n".join(problems)


def test_each_expected_dialogue_individually(sample_tables):
    # one assertion per expected example, so a failure names the rule's case directly
    dialogues, _, _ = _as_dicts(sample_tables)
    for example_id, context in load_expected()["dialogues"].items():
        assert dialogues.get(example_id) == context, example_id


def test_stance_speaker_history_and_target(sample_tables):
    d, u = sample_tables["dialogues"], sample_tables["utterances"]
    stance = dict(zip(u["utterance_id"], u["stance"]))
    text = dict(zip(u["utterance_id"], u["text"]))
    for row in d.iter_rows(named=True):
        ctx = row["context_ids"]
        assert row["target_id"] == ctx[-1] == row["example_id"]
        assert row["n_turns"] == len(ctx) >= 3
        # OP opens, then challenger and OP alternate
        assert [stance[c] for c in ctx] == [1 - (i % 2) for i in range(len(ctx))]
        assert [h["stance"] for h in row["history"]] == [stance[c] for c in ctx[:-1]]
        assert [h["text"] for h in row["history"]] == [text[c] for c in ctx[:-1]]
        assert (row["target_text"], row["target_stance"]) == (text[ctx[-1]], stance[ctx[-1]])
    assert (u["speaker"] == u["stance"]).all()
    assert (u["n_words"] >= 10).all()
    # machine suggestions only: no human labels come out of a build from dumps
    assert u["strategies"].is_null().all() and u["suggestion_source"].unique().to_list() == ["rules:sad-cues-v1"]


def test_topics_never_cross_splits(sample_tables):
    t = sample_tables["topics"]
    assert t.group_by("topic_key").agg(pl.col("split").n_unique().alias("n"))["n"].max() == 1
    d = sample_tables["dialogues"].join(t.select("submission_id", pl.col("split").alias("ts")), on="submission_id")
    assert (d["split"] == d["ts"]).all()


def test_author_names_stay_in_the_workspace(sample_tables):
    from schemas.sad import DIALOGUES, UTTERANCES

    assert "author" not in [c.name for c in UTTERANCES.released_columns]
    assert all("author" not in c.name for c in DIALOGUES.released_columns)


def _reference_as_dicts(ref):
    dialogues = {d["example_id"]: d["context_ids"] for d in ref.dialogues}
    texts = {k: v["text"] for k, v in ref.utterances.items()}
    topics = {d["submission_id"]: d["topic"] for d in ref.dialogues}
    return dialogues, texts, topics


def _assert_same_as_reference(paths: list[Path], tables: dict[str, pl.DataFrame]) -> None:
    ref = reference_build(paths)
    fast = _as_dicts(tables)
    want = _reference_as_dicts(ref)
    assert fast[0] == want[0]  # dialogues: same examples, same contexts
    assert fast[1] == want[1]  # utterances: same ids, same cleaned texts
    assert fast[2] == want[2]  # topics
    u = tables["utterances"]
    for col in ("stance", "n_words", "depth", "parent_id", "submission_id"):
        got = dict(zip(u["utterance_id"], u[col]))
        assert got == {k: v[col] for k, v in ref.utterances.items()}, col


def test_reference_build_agrees_on_the_sample(sample_tables):
    _assert_same_as_reference(SAMPLE_PATHS, sample_tables)


@pytest.mark.parametrize("seed,compression,partitions", [(1, "zst", 3), (2, "gz", 1), (3, "none", 5)])
def test_generated_dumps_give_identical_examples(tmp_path, seed, compression, partitions):
    from pipelines.sad.generator import generate_dump

    paths = generate_dump(tmp_path / "dump", 30_000, seed=seed, compression=compression)
    stages = tmp_path / "stages"
    build_sad(paths, SadSettings(sources=SadSources(partitions=partitions, chunk_bytes=1 << 20)), stages)
    tables = read_candidate(stages)
    assert tables["dialogues"].height > 100
    _assert_same_as_reference(paths, tables)
