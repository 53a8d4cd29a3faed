"""reLAIONet source readers on small inputs made here: LAION metadata parquet, img2dataset parquet
and webdataset tars, image folders; every quarantine reason, batching and streaming."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipelines.core.errors import InputError
from pipelines.core.rejects import rejects_frame
from pipelines.relaionet.sources import Sample, iter_samples


def png(colour: int = 0) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (2, 2), (colour, 0, 0)).save(out, "PNG")
    return out.getvalue()


def read_all(path: Path, batch: int = 1000) -> tuple[list[Sample], pl.DataFrame, dict[str, int]]:
    samples, rejects, counters = [], [], {}
    for part in iter_samples(path, batch=batch):
        samples += part.samples
        rejects += part.rejects
        for name, n in part.counters.items():
            counters[name] = counters.get(name, 0) + n
    return samples, rejects_frame(rejects), counters


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def wds_members(key: str, caption: str | None = "a dog", meta: dict | None = None) -> list[tuple[str, bytes]]:
    members = [(f"{key}.png", png())]
    if caption is not None:
        members.append((f"{key}.txt", caption.encode()))
    meta = {"key": key, "url": f"http://x/{key}.png", "caption": caption, "status": "success",
            "width": 2, "height": 2, "original_width": 40, "original_height": 30, "NSFW": "UNLIKELY",
            "similarity": 0.33, **(meta or {})}
    members.append((f"{key}.json", json.dumps(meta).encode()))
    return members


# --------------------------------------------------------------------------- LAION parquet


def test_laion_parquet_case_insensitive_row_groups_and_batches(tmp_path):
    n = 2_500
    table = pa.table({
        "sample_id": [float(i) for i in range(n)],  # LAION-400M stores ids as floats
        "url": [f"http://x/{i}.jpg" for i in range(n)],
        "Text": ["a goldfish" if i % 7 else "  " for i in range(n)],
        "nsfw": ["UNLIKELY"] * n,
        "SIMILARITY": [0.31] * n,
        "WIDTH": [640] * n, "height": [480] * n, "LICENSE": ["?"] * n,
    })
    path = tmp_path / "part-00000.parquet"
    pq.write_table(table, path, row_group_size=700)
    assert pq.ParquetFile(path).num_row_groups == 4
    parts = list(iter_samples(path, batch=1000))
    assert [len(p.samples) for p in parts] == [1000, 1000, 500]
    samples = [s for p in parts for s in p.samples]
    first = samples[1]
    assert first == Sample("1", "a goldfish", "http://x/1.jpg", "UNLIKELY", 0.31, 640, 480, "?", None, str(path), "row 2")
    assert samples[0].caption is None  # blank: kept, counted, left to caption matching
    assert sum(p.counters["empty_caption"] for p in parts) == len(range(0, n, 7))
    assert sum(p.counters["samples"] for p in parts) == n


def test_laion_parquet_duplicates_and_missing_ids(tmp_path):
    path = tmp_path / "meta.parquet"
    pl.DataFrame({"SAMPLE_ID": [5, 6, 5, None], "TEXT": ["a", "b", "c", "d"]}).write_parquet(path)
    samples, rejects, counters = read_all(path)
    assert [(s.sample_id, s.caption) for s in samples] == [("5", "a"), ("6", "b")]
    assert rejects["drop_reason"].to_list() == ["duplicate_sample_id", "bad_metadata"]
    assert rejects["line"].to_list() == [3, 4]
    assert f"first seen at {path} row 1" in rejects["detail"][0]
    assert counters["duplicate_sample_id"] == 1 and counters["bad_metadata"] == 1


def test_laion_parquet_without_ids_numbers_rows(tmp_path):
    path = tmp_path / "meta.parquet"
    pl.DataFrame({"URL": ["u1", "u2"]}).write_parquet(path)
    samples, _, _ = read_all(path)
    assert [s.sample_id for s in samples] == ["meta:1", "meta:2"]


def test_unknown_parquet_and_broken_parquet(tmp_path):
    odd = tmp_path / "odd.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(odd)
    with pytest.raises(InputError, match="neither a LAION metadata file"):
        iter_samples(odd).__next__()
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    _, rejects, _ = read_all(broken)
    assert rejects["drop_reason"].to_list() == ["broken_archive"]


# --------------------------------------------------------------------------- img2dataset parquet


def test_img2dataset_parquet(tmp_path):
    path = tmp_path / "00000.parquet"
    pl.DataFrame({
        "key": ["000000000", "000000001", "000000002"],
        "caption": ["a cat", "a dog", "x"],
        "url": ["u0", "u1", "u2"],
        "status": ["success", "success", "failed_to_download"],
        "error_message": [None, None, "404"],
        "width": [2, 2, None], "height": [2, 2, None],
        "SAMPLE_ID": [None, "77", None],
        "jpg": [png(1), png(2), None],
    }, schema_overrides={"jpg": pl.Binary}).write_parquet(path)
    samples, rejects, _ = read_all(path)
    assert [(s.sample_id, s.caption, s.width) for s in samples] == [("000000000", "a cat", 2), ("77", "a dog", 2)]
    assert samples[0].image == png(1)
    assert rejects["drop_reason"].to_list() == ["missing_image"]
    assert "failed_to_download" in rejects["detail"][0] and "404" in rejects["detail"][0]


# --------------------------------------------------------------------------- webdataset tars


def test_webdataset_folder_with_every_bad_case(tmp_path):
    members = wds_members("000000000") + wds_members("000000001", caption=None, meta={"SAMPLE_ID": 42})
    members += [("000000002.txt", b"orphan caption"), ("000000002.json", b"{}")]  # no image
    members += [("000000003.png", png()), ("000000003.json", b"{not json")]
    members += wds_members("000000004", meta={"SAMPLE_ID": 42})  # duplicate id
    members += [("README.md", b"hi")]
    write_tar(tmp_path / "00000.tar", members)
    (tmp_path / "00000.parquet").write_bytes(b"img2dataset metadata, not read")
    (tmp_path / "00000_stats.json").write_text("{}")
    samples, rejects, counters = read_all(tmp_path)
    assert [s.sample_id for s in samples] == ["000000000", "42"]
    first = samples[0]
    assert (first.caption, first.url, first.nsfw, first.similarity, first.width, first.image) == (
        "a dog", "http://x/000000000.png", "UNLIKELY", 0.33, 2, png())
    assert first.position == "000000000.png" and first.source == str(tmp_path / "00000.tar")
    assert samples[1].caption is None and counters["empty_caption"] == 1
    assert rejects["drop_reason"].to_list() == ["missing_image", "bad_metadata", "unknown_file", "duplicate_sample_id"]
    assert "first seen at" in rejects["detail"][3] and "000000001.png" in rejects["detail"][3]


def test_truncated_and_corrupt_tar_are_quarantined_whole(tmp_path):
    good = write_tar(tmp_path / "a.tar", wds_members("k0"))
    data = good.read_bytes()
    write_tar(tmp_path / "b.tar", [("k1.txt", b"x" * 3000)] + wds_members("k2"))
    (tmp_path / "b.tar").write_bytes((tmp_path / "b.tar").read_bytes()[:2000])  # inside a member's body
    (tmp_path / "c.tar").write_bytes(data[:512] + b"\x00garbage" * 100)  # second header is junk
    write_tar(tmp_path / "d.tar", wds_members("k3") + wds_members("k4"))
    (tmp_path / "d.tar").write_bytes((tmp_path / "d.tar").read_bytes()[:1024 + 100])  # inside a header
    samples, rejects, counters = read_all(tmp_path)
    assert [s.sample_id for s in samples] == ["k0"]
    assert rejects["drop_reason"].to_list() == ["broken_archive"] * 3
    assert rejects["source_file"].to_list() == [str(tmp_path / n) for n in ("b.tar", "c.tar", "d.tar")]
    assert "truncated: member 1 ('k1.txt'" in rejects["detail"][0]
    assert "no end-of-archive marker after member 1" in rejects["detail"][2]
    assert counters["broken_archive"] == 3


def test_single_tar_streams_in_batches(tmp_path):
    members = [m for i in range(25) for m in wds_members(f"{i:09d}", caption=f"c{i}")]
    path = write_tar(tmp_path / "shard.tar", members)
    parts = list(iter_samples(path, batch=10))
    assert [len(p.samples) for p in parts] == [10, 10, 5]
    assert [s.caption for p in parts for s in p.samples] == [f"c{i}" for i in range(25)]


# --------------------------------------------------------------------------- image folders


def test_folder_with_sidecars(tmp_path):
    (tmp_path / "a.jpg").write_bytes(png(1))
    (tmp_path / "a.txt").write_text("a cat")
    (tmp_path / "b.png").write_bytes(png(2))  # no caption: kept, caption None
    (tmp_path / "c.txt").write_text("no image")
    (tmp_path / "a.webp").write_bytes(png(3))  # same stem as a.jpg
    (tmp_path / "notes.pdf").write_bytes(b"%PDF")
    samples, rejects, counters = read_all(tmp_path, batch=1)
    assert [(s.sample_id, s.caption, s.image) for s in samples] == [("a", "a cat", png(1)), ("b", None, png(2))]
    assert sorted(rejects["drop_reason"].to_list()) == ["duplicate_sample_id", "missing_image", "unknown_file"]
    assert counters["empty_caption"] == 1 and counters["samples"] == 2


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_folder_with_caption_file(tmp_path, kind):
    for name, colour in (("x.jpg", 1), ("y.png", 2), ("z.jpeg", 3)):
        (tmp_path / name).write_bytes(png(colour))
    rows = [{"file": "x.jpg", "caption": "a fish", "sample_id": "s1"}, {"file": "gone.jpg", "caption": "lost", "sample_id": "s2"},
            {"file": "y.png", "caption": "", "sample_id": "s3"}]
    if kind == "csv":
        pl.DataFrame(rows).write_csv(tmp_path / "captions.csv")
    else:
        text = "\n".join(json.dumps(r) for r in rows) + "\n[1]\n"
        (tmp_path / "captions.jsonl").write_text(text)
    samples, rejects, _ = read_all(tmp_path)
    assert [(s.sample_id, s.caption) for s in samples] == [("s1", "a fish"), ("s3", None), ("z", None)]
    expected = ["missing_image"] + (["bad_metadata"] if kind == "jsonl" else [])
    assert rejects["drop_reason"].to_list() == expected
    assert rejects["line"][0] == 3 if kind == "csv" else rejects["line"][0] == 2


# --------------------------------------------------------------------------- layouts


def test_unknown_layouts_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        iter_samples(tmp_path / "missing")
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(InputError, match="webdataset"):
        iter_samples(tmp_path)
    with pytest.raises(InputError, match="unknown input file type"):
        iter_samples(tmp_path / "notes.md")
    with pytest.raises(ValueError):
        iter_samples(tmp_path, batch=0)


def test_parquet_folder(tmp_path):
    pl.DataFrame({"SAMPLE_ID": [1], "TEXT": ["a"]}).write_parquet(tmp_path / "0.parquet")
    pl.DataFrame({"SAMPLE_ID": [2], "TEXT": ["b"]}).write_parquet(tmp_path / "1.parquet")
    samples, _, _ = read_all(tmp_path)
    assert [s.sample_id for s in samples] == ["1", "2"]
