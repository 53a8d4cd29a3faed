"""Byte-identical rebuilds: the same inputs, configuration and labels give the same release files.

Each dataset is built and released twice, in two fresh folders at different paths (as a fresh
clone would be: the inputs are copied there too) and with a different number of workers where the
command line takes one (order dependence). Every file listed in checksums.sha256 must have the same
sha256, except manifest.json, which must be equal once its ``created_at`` is removed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import polars as pl
import pytest

from releases.manifest import MANIFEST_NAME, parse_checksums
from tests.conftest import SAD_SAMPLE
from tests.corpusforge.test_cli_sad import REPO, cf

RELAIONET_SAMPLE = REPO / "pipelines" / "relaionet" / "sample"
SHARED = REPO.parent / "shared" / "data"


def release_files(release: Path) -> dict[str, str]:
    """{relpath: sha256} from checksums.sha256, checked against the files themselves."""
    sums, bad = parse_checksums((release / "checksums.sha256").read_text(encoding="utf-8"))
    assert not bad and sums
    assert cf("release", "verify", str(release), cwd=REPO).returncode == 0
    return sums


def assert_same_release(a: Path, b: Path) -> None:
    sums_a, sums_b = release_files(a), release_files(b)
    assert sorted(sums_a) == sorted(sums_b)
    differ = sorted(rel for rel in sums_a if rel != MANIFEST_NAME and sums_a[rel] != sums_b[rel])
    assert not differ, f"{len(differ)} files differ between the two builds: {differ}"
    man_a, man_b = (json.loads((r / MANIFEST_NAME).read_text(encoding="utf-8")) for r in (a, b))
    man_a.pop("created_at"), man_b.pop("created_at")
    fields = sorted(k for k in man_a.keys() | man_b.keys() if man_a.get(k) != man_b.get(k))
    assert not fields, f"manifest fields differ: {[(k, man_a.get(k), man_b.get(k)) for k in fields]}"
    # and no folder of either build leaks into a release: the two roots differ
    for root in (a, b):
        text = "".join((root / rel).read_text(encoding="utf-8") for rel in (MANIFEST_NAME, "README.md"))
        assert str(a.parents[3]) not in text and str(b.parents[3]) not in text


def twice(tmp_path: Path, build_and_release: Callable[[Path, int], Path]) -> None:
    """Two runs: ``<tmp>/one`` with 1 worker and ``<tmp>/second-clone`` with 2."""
    first = build_and_release(tmp_path / "one", 1)
    second = build_and_release(tmp_path / "second-clone", 2)
    assert_same_release(first, second)


def copy_inputs(src: Path, root: Path) -> Path:
    dest = root / "inputs" / src.name
    shutil.copytree(src, dest)
    return dest


# --------------------------------------------------------------------------- SAD


def sad_labels(path: Path, ws: Path) -> Path:
    """Merged human labels for the first dialogues of the candidate (sorted, so both runs agree)."""
    from schemas.annotation import LABELS

    dialogues = pl.read_parquet(sorted((ws / "sad" / "stages" / "assemble" / "dialogues").glob("p*/*.parquet")))
    targets = sorted(dialogues["example_id"].to_list())[:2]
    answers = [{"strategies": ["Question", "Example"], "stance": "oppose"}, {"strategies": [], "stance": "support"}]
    pl.DataFrame(
        [{"item_id": t, "answers": json.dumps(a), "votes": "{}", "annotators": ["a", "b", "c"], "n_annotators": 3,
          "agreement": 1.0, "source": "majority", "adjudicator": None} for t, a in zip(targets, answers)],
        schema=LABELS.polars_schema(),
    ).write_parquet(path)
    return path


def test_sad_releases_are_byte_identical(tmp_path):
    # One release per run, of the build with human labels: it runs every step of the plain build too
    # (a second release of the plain build would cost another validation, about 10 s per run).
    def run(root: Path, workers: int) -> Path:
        reddit = copy_inputs(SAD_SAMPLE / "reddit", root)
        ws = root / "ws"
        cf("build", "sad", "--input", str(reddit), "--workers", str(workers), "-w", str(ws), cwd=REPO)
        labels = sad_labels(root / "inputs" / "labels.parquet", ws)
        cf("build", "sad", "--input", str(reddit), "--workers", str(workers), "--labels", str(labels), "-w", str(ws), cwd=REPO)
        cf("release", "sad", "--version", "0.1.0", "-w", str(ws), cwd=REPO)
        release = ws / "releases" / "sad" / "0.1.0"
        assert json.loads((release / MANIFEST_NAME).read_text(encoding="utf-8"))["human_labels"]["utterances"] == 2
        return release

    twice(tmp_path, run)


# --------------------------------------------------------------------------- PolyRefuse


@pytest.mark.skipif(not (SHARED / "polyrefuse-sample").is_dir(), reason="PolyRefuse data not found")
def test_polyrefuse_releases_are_byte_identical(tmp_path):
    def run(root: Path, workers: int) -> Path:
        sources = copy_inputs(SHARED / "polyrefuse-sources", root)
        sample = copy_inputs(SHARED / "polyrefuse-sample", root)
        s = ["--languages", "de,en", "-w", str(root / "ws"),
             "--set", f"executor.workers={workers}"]
        cf("build", "polyrefuse", "--sources", str(sources), "--backend", "published", "--translations", str(sample), *s, cwd=REPO)
        cf("release", "polyrefuse", "--version", "0.1.0", *s, cwd=REPO)
        return root / "ws" / "releases" / "polyrefuse" / "0.1.0"

    twice(tmp_path, run)


# --------------------------------------------------------------------------- facts


@pytest.mark.skipif(not (SHARED / "klar").is_dir(), reason="KLAR not found")
def test_fact_frequency_releases_are_byte_identical(tmp_path):
    from tests.pipelines.facts.test_pipeline import write_corpus

    write_corpus(tmp_path / "corpus")  # once: gzip stamps its header with the time, so both runs copy the same bytes

    def run(root: Path, workers: int) -> Path:
        klar = copy_inputs(SHARED / "klar", root)
        copy_inputs(tmp_path / "corpus", root)
        s = ["-w", str(root / "ws"), "--set", 'facts.corpus.step_field="metadata.step"',
             "--set", 'facts.corpus_name="generated test corpus"', "--set", "facts.checkpoints=[100, 300]"]
        cf("build", "facts", "--facts", str(klar), "--corpus", str(root / "inputs" / "corpus"), "--workers", str(workers), *s, cwd=REPO)
        cf("release", "facts", "--version", "1.0.0", *s, cwd=REPO)
        return root / "ws" / "releases" / "facts" / "1.0.0"

    twice(tmp_path, run)


# --------------------------------------------------------------------------- reLAIONet


def test_relaionet_releases_are_byte_identical(tmp_path):
    from tests.corpusforge.test_cli_relaionet import NO_MODEL, corrections_from_expected

    def run(root: Path, workers: int) -> Path:
        images = copy_inputs(RELAIONET_SAMPLE / "images", root)
        corrections = root / "inputs" / "corrections.parquet"
        corrections_from_expected(corrections)
        s = ["-w", str(root / "ws"), *NO_MODEL]
        cf("build", "relaionet", "--input", str(images), "--corrections", str(corrections), "--workers", str(workers), *s, cwd=REPO)
        cf("release", "relaionet", "--version", "0.1.0", *s, cwd=REPO)
        return root / "ws" / "releases" / "relaionet" / "0.1.0"

    twice(tmp_path, run)
