"""Corpus shards: every format and compression, batching, bad documents, broken shards, training order."""

from __future__ import annotations

import bz2
import gzip
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import pipelines.facts.corpus as corpus
from pipelines.core.errors import InputError
from pipelines.facts.corpus import CORPUS_SUFFIXES, CorpusSettings, DataOrder, iter_batches, read_data_order, shard_format
from schemas.rejects import REJECTS

DOCS = [{"id": f"doc-{i}", "text": f"Document {i} mentions Paris ünd ガンディー", "metadata": {"step": 10 * i, "src": "x"}} for i in range(57)]
JSONL = ("\n".join(json.dumps(d, ensure_ascii=False) for d in DOCS) + "\n").encode()
TEXT = ("\n".join(d["text"] for d in DOCS) + "\n").encode()


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def _read(path: Path, settings: CorpusSettings | None = None, **kw) -> list[corpus.DocBatch]:
    return list(iter_batches(path, settings, **kw))


def _docs(batches: list[corpus.DocBatch]) -> tuple[list[str], list[str], list[int]]:
    return ([i for b in batches for i in b.ids], [t for b in batches for t in b.texts], [n for b in batches for n in b.lines])


def _rejects(batches: list[corpus.DocBatch]) -> pl.DataFrame:
    return pl.concat([b.rejects for b in batches])


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    "name,data",
    [
        ("shard.jsonl", JSONL),
        ("shard.jsonl.gz", gzip.compress(JSONL)),
        ("shard.json.gz", gzip.compress(JSONL[:2000]) + gzip.compress(JSONL[2000:])),  # two gzip members, cut mid-line
        ("shard.jsonl.zst", _zst(JSONL)),
        ("misnamed.jsonl.gz", _zst(JSONL)),  # compression by magic bytes, not by name
    ],
)
def test_json_lines_in_every_compression(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    batches = _read(path, CorpusSettings(batch_docs=10))
    ids, texts, lines = _docs(batches)
    assert ids == [d["id"] for d in DOCS]
    assert texts == [d["text"] for d in DOCS]
    assert lines == list(range(1, 58))
    assert [len(b.ids) for b in batches] == [10, 10, 10, 10, 10, 7]
    assert sum(b.bytes_read for b in batches) == path.stat().st_size
    assert all(b.steps is None and not b.skipped and b.shard == str(path) for b in batches)
    assert _rejects(batches).height == 0


@pytest.mark.parametrize("name,compress", [("s.txt", bytes), ("s.txt.gz", gzip.compress), ("s.txt.zst", _zst)])
def test_plain_text_one_document_per_line(tmp_path: Path, name: str, compress) -> None:
    path = tmp_path / name
    path.write_bytes(compress(TEXT.replace(b"\n", b"\n\n", 1)))  # a blank line after the first document
    batches = _read(path, batch_docs=25)
    ids, texts, lines = _docs(batches)
    assert texts == [d["text"] for d in DOCS]
    assert lines == [1] + list(range(3, 59))
    assert ids[:2] == [f"{name}:1", f"{name}:3"]
    assert sum(b.counters.get("blank_lines", 0) for b in batches) == 1
    assert sum(b.bytes_read for b in batches) == path.stat().st_size


def test_parquet_in_row_batches(tmp_path: Path) -> None:
    path = tmp_path / "shard.parquet"
    pq.write_table(pa.table({"id": [d["id"] for d in DOCS], "body": [d["text"] for d in DOCS]}), path, row_group_size=20)
    batches = _read(path, CorpusSettings(text_field="body", batch_docs=16))
    ids, texts, lines = _docs(batches)
    assert ids == [d["id"] for d in DOCS] and texts == [d["text"] for d in DOCS]
    assert lines == list(range(1, 58))
    assert max(len(b.ids) for b in batches) <= 16
    assert sum(b.bytes_read for b in batches) == path.stat().st_size

    no_id = tmp_path / "noid.parquet"
    pq.write_table(pa.table({"text": ["a", None, "  ", "d"], "n": [1, 2, 3, 4]}), no_id)
    batches = _read(no_id)
    assert _docs(batches)[0] == ["noid.parquet:1", "noid.parquet:4"]
    assert _rejects(batches).select("drop_reason", "line").rows() == [("no_text", 2), ("no_text", 3)]

    int_id = tmp_path / "intid.parquet"
    pq.write_table(pa.table({"text": ["a", "b"], "id": [7, None]}), int_id)
    batches = _read(int_id)
    assert _docs(batches)[0] == ["7", "intid.parquet:2"]
    assert batches[-1].counters == {"ids_from_numbers": 1, "ids_generated": 1}


def test_formats_by_name_and_declared(tmp_path: Path) -> None:
    assert shard_format(Path("a.json.gz")) == "jsonl"
    assert shard_format(Path("a.JSONL.zst")) == "jsonl"
    assert shard_format(Path("a.txt.zstd")) == "text"
    assert shard_format(Path("a.parquet")) == "parquet"
    assert shard_format(Path("data.bin"), "text") == "text"
    assert all(shard_format(Path("x" + s)) for s in CORPUS_SUFFIXES)
    with pytest.raises(InputError, match="tells no corpus format"):
        shard_format(Path("a.parquet.gz"))
    path = tmp_path / "docs.data"
    path.write_bytes(JSONL)
    assert _docs(_read(path, CorpusSettings(format="jsonl")))[0] == [d["id"] for d in DOCS]


def test_chunks_fast_and_slow_paths_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small chunks: line numbers run on across chunks; a chunk with a bad line (parsed line by
    line) gives the same documents as a clean one (parsed by Arrow)."""
    monkeypatch.setattr(corpus, "CHUNK_BYTES", 300)
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(JSONL)
    dirty = tmp_path / "dirty.jsonl"
    dirty.write_bytes(JSONL.replace(b"\n", b"\n{oops\n", 1))
    a, b = _read(clean), _read(dirty)
    assert _docs(a)[:2] == _docs(b)[:2]
    assert _docs(b)[2] == [1] + list(range(3, 58 + 1))
    assert _rejects(b).select("drop_reason", "line", "raw").rows() == [("malformed_json", 2, "{oops")]


# --------------------------------------------------------------------------- bad documents


def test_bad_documents_are_quarantined(tmp_path: Path) -> None:
    lines = [
        '{"id": "ok-1", "text": "fine"}',
        '{"id": "ok-2", "text": "fine again"',  # cut: malformed
        '["a list"]',
        '{"id": "no-text"}',
        '{"id": "null-text", "text": null}',
        '{"id": "num-text", "text": 42}',
        '{"id": "blank-text", "text": "  \\n "}',
        "",
        '{"id": 17, "text": "numeric id"}',
        '{"text": "no id"}',
        '{"id": "surrogate", "text": "cut emoji \\ud83d here"}',
        b'{"id": "latin1", "text": "caf\xe9"}'.decode("latin-1"),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(_join_bytes(lines))
    batches = _read(path)
    rejects = _rejects(batches)
    assert rejects.schema == REJECTS.polars_schema()
    assert rejects.select("record_id", "drop_reason", "line").rows() == [
        (None, "malformed_json", 2),
        (None, "not_an_object", 3),
        ("no-text", "no_text", 4),
        ("null-text", "no_text", 5),
        ("num-text", "no_text", 6),
        ("blank-text", "no_text", 7),
        (None, "malformed_json", 12),
    ]
    assert set(rejects.get_column("source_file")) == {str(path)}
    assert rejects.get_column("detail").to_list()[2:6] == [
        "field 'text' is missing", "field 'text' is missing", "field 'text' is a int", "field 'text' is empty"
    ]
    ids, texts, got_lines = _docs(batches)
    assert ids == ["ok-1", "17", "bad.jsonl:10", "surrogate"]
    assert texts[3] == "cut emoji \ufffd here"
    assert got_lines == [1, 9, 10, 11]
    counters = batches[-1].counters
    assert counters["blank_lines"] == 1 and counters["ids_from_numbers"] == 1 and counters["ids_generated"] == 1


def _join_bytes(lines: list[str]) -> bytes:
    # the last line holds a Latin-1 byte (not UTF-8): written as raw bytes
    out = [line.encode("utf-8") for line in lines[:-1]] + [lines[-1].encode("latin-1")]
    return b"\n".join(out) + b"\n"


def test_text_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"good line\ncaf\xe9\nanother\n")
    batches = _read(path)
    assert _docs(batches)[1] == ["good line", "another"]
    assert _rejects(batches).select("drop_reason", "line").rows() == [("bad_encoding", 2)]


# --------------------------------------------------------------------------- broken shards


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _flip(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


BIG = ("\n".join(json.dumps({"id": f"d{i}", "text": f"text {i} " + "x" * (i % 97)}) for i in range(20_000)) + "\n").encode()


@pytest.mark.parametrize(
    "name,data",
    [
        ("cut.jsonl.zst", _cut(_zst(BIG))),
        ("cut.jsonl.gz", _cut(gzip.compress(BIG))),
        ("cut.txt.gz", _cut(gzip.compress(BIG))),
        ("flipped.jsonl.gz", _flip(gzip.compress(BIG))),
        ("flipped.jsonl.zst", _flip(zstandard.ZstdCompressor(write_checksum=True).compress(BIG))),
    ],
)
def test_broken_compressed_shard_is_quarantined_whole(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    batches = _read(path, CorpusSettings(batch_docs=100))
    assert len(batches) == 1
    batch = batches[0]
    assert batch.skipped and batch.ids == [] and batch.texts == []
    assert batch.bytes_read == path.stat().st_size
    assert batch.counters == {"shards_skipped": 1}
    (reject,) = batch.rejects.rows(named=True)
    assert reject["drop_reason"] == "broken_compression" and reject["source_file"] == str(path)
    assert "whole shard is skipped" in reject["detail"]
    if name.startswith("cut"):
        assert "truncated" in reject["detail"] and reject["line"] > 1
    else:
        assert "compressed bytes" in reject["detail"]


def test_broken_parquet_is_quarantined_whole(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(1000)]}), good)
    path = tmp_path / "cut.parquet"
    path.write_bytes(good.read_bytes()[:-100])
    (batch,) = _read(path)
    assert batch.skipped and batch.ids == [] and batch.bytes_read == path.stat().st_size
    assert batch.rejects.get_column("drop_reason").to_list() == ["broken_parquet"]


@pytest.mark.parametrize(
    "setup,settings,problem",
    [
        (lambda p: p / "absent.jsonl", CorpusSettings(), "no such corpus shard"),
        (lambda p: _put(p / "a.csv", b"x"), CorpusSettings(), "tells no corpus format"),
        (lambda p: _put(p / "a.jsonl.bz2", bz2.compress(JSONL)), CorpusSettings(format="jsonl"), "unsupported compression 'bz2'"),
        (lambda p: _put(p / "a.txt", TEXT), CorpusSettings(step_field="step"), "plain-text shard has no step field"),
        (lambda p: _parquet(p / "a.parquet", {"body": ["x"]}), CorpusSettings(), "no text column 'text'"),
        (lambda p: _parquet(p / "a.parquet", {"text": [1]}), CorpusSettings(), "text column 'text'"),
        (lambda p: _parquet(p / "a.parquet", {"text": ["x"], "id": [1.5]}), CorpusSettings(), "id column 'id' is double"),
        (lambda p: _parquet(p / "a.parquet", {"text": ["x"], "step": [1.5]}), CorpusSettings(step_field="step"), "step column 'step'"),
        (lambda p: _parquet(p / "a.parquet", {"text": ["x"]}), CorpusSettings(step_field="metadata.step"), "no step column"),
        (lambda p: _put(p / "a.jsonl", JSONL), CorpusSettings(text_field="meta", step_field="meta.step"), "inside the text or id field"),
    ],
)
def test_whole_file_problems_are_input_errors(tmp_path: Path, setup, settings: CorpusSettings, problem: str) -> None:
    with pytest.raises(InputError) as info:
        _read(setup(tmp_path), settings)
    assert problem in str(info.value)
    assert info.value.fix


def _put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


# --------------------------------------------------------------------------- training order


def test_step_field_nested_and_top_level(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(gzip.compress(JSONL))
    batches = _read(path, CorpusSettings(step_field="metadata.step", batch_docs=20))
    assert [s for b in batches for s in b.steps] == [10 * i for i in range(57)]

    rows = [
        {"id": "a", "text": "t", "step": 5},
        {"id": "b", "text": "t"},  # no step: kept, step None
        {"id": "c", "text": "t", "step": None},
        {"id": "d", "text": "t", "step": "12"},
        {"id": "e", "text": "t", "step": 1.5},
        {"id": "f", "text": "t", "step": True},
        {"id": "g", "text": "t", "step": -1},
        {"id": "h", "text": "t", "step": 2**63},
        {"id": "i", "text": "t", "step": 7},
    ]
    flat = tmp_path / "flat.jsonl"
    flat.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    batches = _read(flat, CorpusSettings(step_field="step"))
    assert list(zip(*_docs(batches)[:1], [s for b in batches for s in b.steps])) == [("a", 5), ("b", None), ("c", None), ("i", 7)]
    assert _rejects(batches).select("record_id", "drop_reason", "line").rows() == [
        ("d", "bad_step", 4), ("e", "bad_step", 5), ("f", "bad_step", 6), ("g", "bad_step", 7), ("h", "bad_step", 8)
    ]
    assert "'step' is \"12\", not a non-negative integer" in _rejects(batches).get_column("detail")[0]

    # a metadata that is not an object, or lacks the step: no step
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"text": "t", "metadata": 3}\n{"text": "t", "metadata": {}}\n{"text": "t", "metadata": {"step": 4}}\n')
    batches = _read(odd, CorpusSettings(step_field="metadata.step"))
    assert [s for b in batches for s in b.steps] == [None, None, 4]


def test_clean_chunks_are_taken_whole_with_the_same_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk whose every line passes the document rules is taken whole (no per-line rules);
    it gives what the rules line by line give, steps of null, missing or empty parents included."""
    lines = [
        '{"id": "a", "text": "one", "metadata": {"step": 3}}',
        '{"id": "b", "text": "two"}',
        '{"id": "c", "text": "three", "metadata": null}',
        '{"id": "d", "text": "four", "metadata": {}}',
        '{"id": "e", "text": " five ", "metadata": {"step": null}}',
        '{"id": "f", "text": "six", "metadata": {"step": 0}}',
    ]
    path = tmp_path / "clean.jsonl"
    path.write_text("\n".join(lines) + "\n")
    settings = CorpusSettings(step_field="metadata.step")
    taken: list[corpus._Part | None] = []
    whole = corpus._whole_part

    def recording(*args):
        taken.append(whole(*args))
        return taken[-1]

    monkeypatch.setattr(corpus, "_whole_part", recording)
    fast = _read(path, settings)
    assert taken and all(part is not None for part in taken)  # the chunk was taken whole
    monkeypatch.setattr(corpus, "_whole_part", lambda *a: None)
    slow = _read(path, settings)
    assert _docs(fast) == _docs(slow)
    assert [s for b in fast for s in b.steps] == [s for b in slow for s in b.steps] == [3, None, None, None, None, 0]
    assert [t for b in fast for t in b.texts] == ["one", "two", "three", "four", " five ", "six"]

    # one blank text, one negative step: Arrow reads the chunk, the rules go line by line
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines + ['{"id": "g", "text": "  "}', '{"id": "h", "text": "t", "metadata": {"step": -2}}']) + "\n")
    monkeypatch.setattr(corpus, "_whole_part", whole)
    batches = _read(bad, settings)
    assert _docs(batches)[0] == ["a", "b", "c", "d", "e", "f"]
    assert _rejects(batches).select("record_id", "drop_reason", "line").rows() == [("g", "no_text", 7), ("h", "bad_step", 8)]


def test_parquet_step_columns(tmp_path: Path) -> None:
    path = tmp_path / "s.parquet"
    meta = pa.array([{"step": 3}, None, {"step": -2}, {"step": 9}], type=pa.struct([("step", pa.int64())]))
    pq.write_table(pa.table({"text": ["a", "b", "c", "d"], "metadata": meta, "step": pa.array([1, None, 2, 3], pa.int32())}), path)
    nested = _read(path, CorpusSettings(step_field="metadata.step"))
    assert [s for b in nested for s in b.steps] == [3, None, 9]
    assert _rejects(nested).select("drop_reason", "line").rows() == [("bad_step", 3)]
    top = _read(path, CorpusSettings(step_field="step"))
    assert [s for b in top for s in b.steps] == [1, None, 2, 3]


def test_data_order_file(tmp_path: Path) -> None:
    order_csv = tmp_path / "order.csv"
    order_csv.write_text("shard,first_line,last_line,step\nshard.jsonl,1,20,100\nshard.jsonl,31,57,300\ndir/other.txt,1,5,7\nshard.jsonl,21,30,200\n")
    order = read_data_order(order_csv)
    assert isinstance(order, DataOrder)
    assert [order.step_for("shard.jsonl", n) for n in (1, 20, 21, 30, 31, 57, 58)] == [100, 100, 200, 200, 300, 300, None]
    assert order.step_for("/data/corpus/shard.jsonl", 5) == 100  # by file name
    assert order.step_for("other.txt", 3) == 7 and order.step_for("unknown.jsonl", 1) is None

    order_jsonl = tmp_path / "order.jsonl"
    order_jsonl.write_text(
        '{"shard": "shard.jsonl", "first_line": 1, "last_line": 20, "step": 100}\n\n'
        '{"shard": "shard.jsonl", "first_line": 21, "last_line": 50, "step": 200}\n'
    )
    path = tmp_path / "shard.jsonl"
    path.write_bytes(JSONL)
    via_settings = _read(path, CorpusSettings(order_file=order_jsonl, batch_docs=25))
    steps = [s for b in via_settings for s in b.steps]
    assert steps == [100] * 20 + [200] * 30 + [None] * 7
    via_argument = _read(path, CorpusSettings(batch_docs=25), order=read_data_order(order_jsonl))
    assert [s for b in via_argument for s in b.steps] == steps

    with pytest.raises(InputError, match="both a step field"):
        _read(path, CorpusSettings(order_file=order_jsonl, step_field="metadata.step"))


@pytest.mark.parametrize(
    "text,problem,line",
    [
        ("shard,first_line,last_line,step\na,1,10,5\na,10,12,6\n", "overlap lines 1..10", 3),
        ("shard,first_line,last_line,step\na,1,x,5\n", "last_line is 'x'", 2),
        ("shard,first_line,last_line,step\na,5,4,5\n", "bad line range 5..4", 2),
        ("shard,first_line,last_line,step\na,0,4,5\n", "bad line range 0..4", 2),
        ("shard,first_line,last_line,step\na,1,4,-5\n", "step is -5", 2),
        ("shard,first_line,last_line,step\n,1,4,5\n", "no shard name", 2),
        ("shard,first,last,step\na,1,4,5\n", "the header lacks first_line, last_line", None),
    ],
)
def test_bad_data_order_files(tmp_path: Path, text: str, problem: str, line: int | None) -> None:
    path = tmp_path / "order.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_data_order(path)
    assert problem in str(info.value) and info.value.line == line


def test_bad_data_order_json_and_type(tmp_path: Path) -> None:
    path = tmp_path / "order.jsonl"
    path.write_text('{"shard": "a", "first_line": 1, "last_line": 2, "step": 3}\n{"shard": "a", "first_line": 3, "last_line": 4, "step": 1.5}\n')
    with pytest.raises(InputError, match="step is 1.5") as info:
        read_data_order(path)
    assert info.value.line == 2
    path.write_text('{"shard": "a", "first_line": 1\n')
    with pytest.raises(InputError, match="not valid JSON"):
        read_data_order(path)
    with pytest.raises(InputError, match="unknown data-order file type"):
        read_data_order(_put(tmp_path / "order.tsv", b"x"))
