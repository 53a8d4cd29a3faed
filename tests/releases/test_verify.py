"""verify_release: detects modified, deleted and unlisted files, naming them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from pipelines.sad.synthetic import synthetic_candidate  # noqa: E402
from releases import CardText, ReleaseNotFoundError, ReleaseSpec, verify_release, write_release  # noqa: E402
from schemas.sad import DIALOGUES, UTTERANCES  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    cand = synthetic_candidate(n_topics=10, chains_per_topic=3, seed=2)
    spec = ReleaseSpec(
        dataset="sad",
        version="0.1.0",
        configs={"dialogues": DIALOGUES, "utterances": UTTERANCES},
        tables={"dialogues": cand["dialogues"], "utterances": cand["utterances"]},
        card=CardText(title="SAD", summary="test"),
    )
    return write_release(spec, tmp_path_factory.mktemp("verify"))


@pytest.fixture()
def release(pristine, tmp_path) -> Path:
    copy = tmp_path / "sad" / "0.1.0"
    shutil.copytree(pristine, copy)
    for p in copy.rglob("*"):
        if p.is_file():
            os.chmod(p, 0o644)
    return copy


def test_pristine_release_verifies(release):
    report = verify_release(release)
    assert report.ok and report.checked == 8  # 6 parquet files, README.md, manifest.json (not checksums itself)
    assert (report.mismatched, report.missing, report.unexpected, report.problems) == ([], [], [], [])
    assert report.render_text().startswith("OK")


def test_one_modified_byte_is_detected_and_named(release):
    victim = release / "dialogues" / "train-00000-of-00001.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    report = verify_release(release)
    assert not report.ok
    assert report.mismatched == ["dialogues/train-00000-of-00001.parquet"]
    assert report.missing == [] and report.unexpected == []
    text = report.render_text()
    assert text.startswith("FAILED") and "dialogues/train-00000-of-00001.parquet" in text


def test_deleted_file_is_reported_missing(release):
    (release / "utterances" / "test-00000-of-00001.parquet").unlink()
    report = verify_release(release)
    assert not report.ok and report.missing == ["utterances/test-00000-of-00001.parquet"]
    assert report.checked == 7


def test_extra_file_is_reported_unexpected(release):
    (release / "dialogues" / "extra-00000-of-00001.parquet").write_bytes(b"not listed")
    (release / "notes.txt").write_text("hello")
    report = verify_release(release)
    assert not report.ok
    assert report.unexpected == ["dialogues/extra-00000-of-00001.parquet", "notes.txt"]
    assert report.mismatched == [] and report.missing == []


def test_manifest_disagreeing_with_checksums_is_a_problem(release):
    # Rewrite a data file AND its checksum line: the manifest still records the old hash.
    import hashlib

    victim = release / "dialogues" / "test-00000-of-00001.parquet"
    victim.write_bytes(victim.read_bytes() + b"\0")
    sums = release / "checksums.sha256"
    lines = [
        (f"{hashlib.sha256(victim.read_bytes()).hexdigest()}  dialogues/test-00000-of-00001.parquet"
         if line.endswith("dialogues/test-00000-of-00001.parquet") else line)
        for line in sums.read_text().splitlines()
    ]
    sums.write_text("\n".join(lines) + "\n")
    report = verify_release(release)
    assert not report.ok and report.mismatched == []
    assert any("dialogues/test-00000-of-00001.parquet" in p for p in report.problems)


def test_missing_checksums_and_missing_folder(release, tmp_path):
    (release / "checksums.sha256").unlink()
    report = verify_release(release)
    assert not report.ok and report.missing == ["checksums.sha256"]
    with pytest.raises(ReleaseNotFoundError):
        verify_release(tmp_path / "nope")
