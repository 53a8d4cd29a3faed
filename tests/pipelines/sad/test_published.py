"""Source (b): the published SAD release files brought in as a build source."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.core.stage import StageStore
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings, SadSources
from tests.conftest import SAD_SAMPLE

PUBLISHED = SAD_SAMPLE / "published"


def test_published_sample_builds_the_same_tables_shape(tmp_path):
    result = build_sad([PUBLISHED], SadSettings(), tmp_path / "st")
    assert result.kind == "published"
    t = read_candidate(tmp_path / "st")
    args = json.loads((PUBLISHED / "argument.json").read_text())
    assert t["dialogues"].height == len({tuple(a["context"]) for a in args})
    row = t["dialogues"].filter(pl.col("example_id") == args[0]["context"][-1]).row(0, named=True)
    assert row["context_ids"] == args[0]["context"]
    assert [h["stance"] for h in row["history"]] + [row["target_stance"]] == args[0]["attitude"]
    assert row["submission_id"] == args[0]["context"][0]
    assert t["utterances"]["created_utc"].is_null().all()


def _published(tmp_path: Path, args: list, sent: dict | None = None) -> Path:
    d = tmp_path / "pub"
    d.mkdir()
    (d / "sent.json").write_text(json.dumps(sent if sent is not None else json.loads((PUBLISHED / "sent.json").read_text())))
    (d / "argument.json").write_text(json.dumps(args))
    return d


def test_bad_published_examples_are_quarantined_with_reasons(tmp_path):
    sent = json.loads((PUBLISHED / "sent.json").read_text())
    good = json.loads((PUBLISHED / "argument.json").read_text())[0]
    sent["short"] = "too short to count"
    args = [
        good,
        {"topic": good["topic"], "context": good["context"], "attitude": [1, 0]},  # 1 attitude_mismatch
        {"topic": good["topic"], "context": good["context"][:2] + ["nope"], "attitude": [1, 0, 1]},  # 2 unknown_utterance
        {"topic": good["topic"], "context": good["context"][:2] + ["short"], "attitude": [1, 0, 1]},  # 3 invalid_utterance
        {"topic": good["topic"], "context": good["context"][:2], "attitude": [1, 0]},  # 4 too_few_turns
        "not an example",  # 5 malformed_example
        dict(good),  # 6 duplicate_example
        {"topic": good["topic"], "context": good["context"], "attitude": [1, 0, 1, 0, 1][: len(good["context"]) - 1] + [7]},  # 7
    ]
    d = _published(tmp_path, args, sent)
    result = build_sad([d], SadSettings(), tmp_path / "st")
    rej = StageStore(tmp_path / "st").rejects("import_published")
    reasons = rej["drop_reason"].to_list()
    assert reasons == [
        "attitude_mismatch", "unknown_utterance", "invalid_utterance", "too_few_turns",
        "malformed_example", "duplicate_example", "bad_attitude",
    ]
    assert "example #2" in rej["detail"][1] and "nope" in rej["detail"][1]
    assert set(rej["source_file"]) == {str(d / "argument.json")}
    assert result.steps["import_published"].stats["dropped_total"] == 7
    assert read_candidate(tmp_path / "st")["dialogues"].height == 1


def test_published_strategy_labels_become_human_labels(tmp_path):
    good = json.loads((PUBLISHED / "argument.json").read_text())[0]
    n = len(good["context"])
    labelled = dict(good, strategy=[["Statement"]] + [["Question", "Example"]] * (n - 1))
    d = _published(tmp_path, [labelled])
    settings = SadSettings(sources=SadSources(published_strategy_field="strategy"))
    build_sad([d], settings, tmp_path / "st")
    t = read_candidate(tmp_path / "st")
    row = t["dialogues"].row(0, named=True)
    assert row["target_strategies"] == [0, 2]
    assert t["utterances"]["strategies_source"].unique().to_list() == ["published"]


def test_broken_published_json_names_the_file_and_line(tmp_path):
    d = tmp_path / "pub"
    shutil.copytree(PUBLISHED, d)
    (d / "argument.json").write_text('[\n{"topic": "x",\n "context": [oops]}\n]')
    with pytest.raises(InputError) as err:
        build_sad([d], SadSettings(), tmp_path / "st")
    assert f"{d / 'argument.json'}:3" in str(err.value) and "not valid JSON" in str(err.value)


def test_an_utterance_with_two_histories_is_rejected(tmp_path):
    good = json.loads((PUBLISHED / "argument.json").read_text())[0]
    flipped = dict(good, attitude=[1 - a for a in good["attitude"]])
    d = _published(tmp_path, [good, flipped])
    build_sad([d], SadSettings(), tmp_path / "st")
    rej = StageStore(tmp_path / "st").rejects("import_published")
    assert rej.select("record_id", "drop_reason").rows() == [(good["context"][-1], "inconsistent_history")]
    assert "example #1" in rej["detail"][0]
