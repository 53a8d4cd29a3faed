"""Bad input to the SAD build: a clear message, quarantined records with reasons, counts."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import zstandard

from pipelines.core.errors import InputError, TruncatedInputError
from pipelines.core.stage import StageStore
from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadSettings, SadSources
from tests.pipelines.sad.dumps import com, thread, write_lines


def _build(tmp_path: Path, inputs: list[Path], settings: SadSettings = SadSettings()):
    stages = tmp_path / "ws" / "stages"
    result = build_sad(inputs, settings, stages)
    return result, StageStore(stages)


def test_malformed_wrong_type_and_missing_fields_are_quarantined(tmp_path):
    rows = thread("s1") + [
        '{"id": "bad1", "body": oops}',  # line 4
        json.dumps(com("c9", "s1", "t3_s1", "y", text=12345)),  # 5: wrong type
        json.dumps({k: v for k, v in com("c8", "s1", "t3_s1", "y").items() if k != "author"}),  # 6: missing author
        "[1, 2, 3]",  # 7
        json.dumps({"id": "zz", "subreddit": "changemyview"}),  # 8: neither kind
        json.dumps(com("c7", "s1", "t3_s1", "y") | {"title": "both"}),  # 9: ambiguous
        json.dumps(com("C-6", "s1", "t3_s1", "y")),  # 10: bad id
    ]
    path = write_lines(tmp_path / "dump.jsonl", rows)
    result, store = _build(tmp_path, [path])
    rejects = store.rejects("ingest").sort("line")
    assert rejects.select("line", "drop_reason").rows() == [
        (4, "malformed_json"),
        (5, "wrong_type"),
        (6, "missing_field"),
        (7, "not_an_object"),
        (8, "unknown_kind"),
        (9, "ambiguous_kind"),
        (10, "bad_id"),
    ]
    assert set(rejects["source_file"]) == {str(path)}
    by_line = dict(zip(rejects["line"], rejects["detail"]))
    assert by_line[5] == "field 'body': expected a string, got an integer"
    assert by_line[6] == "comment lacks the required field 'author'"
    assert "not valid JSON" in by_line[4]
    assert dict(zip(rejects["line"], rejects["raw"]))[4] == '{"id": "bad1", "body": oops}'
    stats = result.steps["ingest"].stats
    assert stats["dropped"] == {
        "ambiguous_kind": 1, "bad_id": 1, "malformed_json": 1, "missing_field": 1,
        "not_an_object": 1, "unknown_kind": 1, "wrong_type": 1,
    }
    assert stats["counters"]["lines"] == 10
    assert stats["rows_out"]["nodes"] == 3
    # the good rows still make their dialogue
    assert read_candidate(tmp_path / "ws" / "stages")["dialogues"]["example_id"].to_list() == ["t1_s1b"]


def test_comment_whose_parent_is_missing_is_quarantined(tmp_path):
    rows = thread("s1") + [com("c5", "s1", "t1_nothere", "y"), com("c6", "s1", "t1_c5", "op"), com("c7", "zz", "t3_zz", "y")]
    path = write_lines(tmp_path / "d.jsonl", rows)
    result, store = _build(tmp_path, [path])
    rej = store.rejects("build_dialogues").sort("record_id")
    assert rej.select("record_id", "drop_reason", "line").rows() == [
        ("t1_c5", "parent_missing", 4),
        ("t1_c7", "submission_missing", 6),
    ]
    assert "t1_nothere is not in the input" in rej["detail"][0]
    assert result.steps["build_dialogues"].stats["dropped"] == {"parent_missing": 1, "submission_missing": 1}
    # the orphan's own reply is not part of any dialogue
    assert "t1_c6" not in read_candidate(tmp_path / "ws" / "stages")["utterances"]["utterance_id"].to_list()


def test_unknown_compression_stops_with_the_file_named(tmp_path):
    import bz2

    path = tmp_path / "RC_2019.bz2"
    path.write_bytes(bz2.compress(b'{"id": "a"}\n'))
    with pytest.raises(InputError) as err:
        _build(tmp_path, [path])
    assert str(path) in str(err.value) and "unsupported compression 'bz2'" in str(err.value)
    assert not (tmp_path / "ws" / "stages" / "ingest").exists()


def _truncated_zst(tmp_path: Path) -> tuple[Path, int]:
    rows = []
    for i in range(3000):
        rows += thread(f"t{i}")
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    blob = zstandard.ZstdCompressor().compress(data)
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(blob[: int(len(blob) * 0.6)])
    return path, len(rows)


def test_truncated_zst_stops_by_default_with_a_clear_error(tmp_path):
    path, _ = _truncated_zst(tmp_path)
    with pytest.raises(TruncatedInputError) as err:
        _build(tmp_path, [path])
    msg = str(err.value)
    assert str(path) in msg and "truncated" in msg and "on_truncated" in msg
    assert not (tmp_path / "ws" / "stages" / "ingest" / "_SUCCESS").exists()


def test_truncated_zst_can_keep_its_complete_lines(tmp_path):
    path, total = _truncated_zst(tmp_path)
    settings = SadSettings(sources=SadSources(on_truncated="quarantine"))
    result, store = _build(tmp_path, [path], settings)
    rej = store.rejects("ingest")
    assert rej["drop_reason"].to_list() == ["truncated_file"]
    lines = result.steps["ingest"].stats["counters"]["lines"]
    assert 0 < lines < total
    assert rej["line"][0] == lines + 1
    assert result.steps["ingest"].stats["rows_out"]["nodes"] == lines
    assert result.steps["ingest"].stats["counters"]["truncated_files"] == 1


def test_missing_input_path_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no such file or directory"):
        _build(tmp_path, [tmp_path / "nope.jsonl"])


def test_duplicate_ids_keep_the_first_copy(tmp_path):
    rows = thread("s1") + [com("s1a", "s1", "t3_s1", "someone", text="a different text " + "word " * 20)]
    path = write_lines(tmp_path / "d.jsonl", rows)
    result, store = _build(tmp_path, [path])
    rej = store.rejects("build_dialogues")
    assert rej.select("record_id", "drop_reason", "line").rows() == [("t1_s1a", "duplicate_id", 4)]
    utt = read_candidate(tmp_path / "ws" / "stages")["utterances"]
    assert utt.filter(pl.col("utterance_id") == "t1_s1a")["text"][0].startswith("this sentence")


def test_lone_surrogates_are_repaired_in_both_builds(tmp_path):
    from pipelines.sad.reference import reference_build

    rows = thread("s1")
    lines = [json.dumps(r) for r in rows]
    lines[2] = lines[2].replace("this sentence", "this \\ud83d sentence")  # OP's reply, an emoji cut in half
    path = write_lines(tmp_path / "d.jsonl", lines)
    result, _ = _build(tmp_path, [path])
    utt = read_candidate(tmp_path / "ws" / "stages")["utterances"]
    text = utt.filter(pl.col("utterance_id") == "t1_s1b")["text"][0]
    assert text.startswith("this \ufffd sentence")
    assert result.steps["ingest"].stats["counters"]["values_coerced"] == 1
    assert reference_build([path]).utterances["t1_s1b"]["text"] == text
