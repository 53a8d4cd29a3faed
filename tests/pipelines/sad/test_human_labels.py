"""Merged human labels override suggestions in the next build; bad label rows are quarantined."""

from __future__ import annotations

import json

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.core.stage import StageStore
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings
from schemas.annotation import LABELS
from schemas.sad import STRATEGIES


def _labels(path, rows):
    pl.DataFrame(
        [
            {"item_id": i, "answers": a, "votes": "{}", "annotators": ["a", "b", "c"], "n_annotators": 3, "agreement": 1.0, "source": s, "adjudicator": None}
            for i, a, s in rows
        ],
        schema=LABELS.polars_schema(),
    ).write_parquet(path)
    return path


def test_human_labels_override_suggestions_with_provenance(tmp_path, sad_sample):
    stages = tmp_path / "stages"
    build_sad([sad_sample / "reddit"], SadSettings(), stages)
    before = read_candidate(stages)
    targets = before["dialogues"]["example_id"].to_list()[:3]
    labels = _labels(tmp_path / "labels.parquet", [
        (targets[0], json.dumps({"strategies": ["Question", "Example"], "stance": "oppose"}), "majority"),
        (targets[1], json.dumps({"strategies": [], "stance": "support"}), "adjudicated"),
        (targets[2], json.dumps({"strategies": ["Sarcasm"]}), "majority"),  # not a SAD strategy
    ])
    result = build_sad([sad_sample / "reddit"], SadSettings(), stages, labels=labels)
    skipped = {name: o.skipped for name, o in result.steps.items()}
    assert skipped == {"ingest": True, "build_dialogues": True, "suggest_strategies": True, "human_labels": False, "apply_labels": False, "assemble": False}
    assert result.dropped()["human_labels"] == {"bad_label": 1}
    rejects = StageStore(stages).rejects("human_labels")
    assert rejects["record_id"].to_list() == [targets[2]] and "Sarcasm" in rejects["detail"][0]

    after = read_candidate(stages)
    utt = after["utterances"].filter(pl.col("strategies").is_not_null()).sort("utterance_id")
    got = {r["utterance_id"]: ([STRATEGIES[k] for k in r["strategies"]], r["strategies_source"]) for r in utt.iter_rows(named=True)}
    assert got == {targets[0]: (["Question", "Example"], "human:majority:3"), targets[1]: ([], "human:adjudicated:3")}
    # suggestions are kept beside the labels, and dialogues carry the target's labels
    assert after["utterances"]["suggested_strategies"].to_list() == before["utterances"]["suggested_strategies"].to_list()
    dia = after["dialogues"].filter(pl.col("target_strategies").is_not_null())
    assert sorted(dia["example_id"].to_list()) == sorted(targets[:2])


def test_a_missing_or_foreign_labels_file_is_a_clear_error(tmp_path, sad_sample):
    with pytest.raises(InputError, match="no such labels file.*annotate merge"):
        build_sad([sad_sample / "reddit"], SadSettings(), tmp_path / "s", labels=tmp_path / "nope.parquet")
    pl.DataFrame({"x": [1]}).write_parquet(tmp_path / "other.parquet")
    with pytest.raises(InputError, match=r"other.parquet: missing column\(s\) \['item_id', 'answers', 'source', 'n_annotators'\]"):
        build_sad([sad_sample / "reddit"], SadSettings(), tmp_path / "s", labels=tmp_path / "other.parquet")
