"""Fact frequencies through the command line: build, validate, release (loaded with `datasets`,
verified), export to the paper's JSON layout, and the errors a user meets first."""

from __future__ import annotations

import json

import pytest

from tests.corpusforge.test_cli_polyrefuse import squeeze
from tests.corpusforge.test_cli_sad import REPO, cf
from tests.pipelines.facts.test_pipeline import KLAR, write_corpus

pytestmark = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")


def test_build_validate_release_load_and_export(tmp_path):
    docs = write_corpus(tmp_path / "corpus")
    ws = str(tmp_path / "ws")
    s = ["-w", ws, "--set", 'facts.corpus.step_field="metadata.step"', "--set", 'facts.corpus_name="generated test corpus"']
    built = cf("build", "facts", "--facts", str(KLAR), "--corpus", str(tmp_path / "corpus"), "--checkpoints", "100,300", *s, cwd=REPO)
    assert f"{len(docs)} documents in 4 shards" in built.stdout
    assert "PASS" in cf("validate", "facts", "--set", "facts.checkpoints=[100, 300]", *s, cwd=REPO).stdout
    released = cf("release", "facts", "--version", "1.0.0", "--set", "facts.checkpoints=[100, 300]", *s, cwd=REPO).stdout
    assert "all: train 14,364" in released and "checkpoints: train 28,728" in released
    release = tmp_path / "ws" / "releases" / "facts" / "1.0.0"
    assert cf("release", "verify", str(release), cwd=REPO).returncode == 0
    assert (release / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = (release / "README.md").read_text(encoding="utf-8")
    assert "generated test corpus" in card and "summary.png" in card and "shard-0.jsonl.gz" in card

    from datasets import load_dataset

    every = load_dataset(str(release), "all")["train"]
    german_free = load_dataset(str(release), "ja")["train"]
    assert len(every) == 14_364 and len(german_free) == 1_197 and set(german_free["lang"]) == {"ja"}
    assert sum(every["cooccurrence_docs"]) > 0
    at = load_dataset(str(release), "checkpoints")["train"]
    assert set(at["checkpoint"]) == {100, 300}

    out = tmp_path / "frequencies.json"
    cf("export", "facts", "--out", str(out), "--version", "1.0.0", *s, cwd=REPO)
    paper = json.loads(out.read_text(encoding="utf-8"))
    assert sorted(paper) == sorted({r["lang"] for r in every})
    sample = paper["en"]["native_language"][0]
    assert set(sample) == {"subject", "object", "index", "frequency"}
    by_fact = {(r["lang"], r["index"]): r["cooccurrence_docs"] for r in every}
    assert all(by_fact[(lang, x["index"])] == x["frequency"] for lang, rels in paper.items() for xs in rels.values() for x in xs)


def test_input_errors_are_named(tmp_path):
    ws = str(tmp_path / "ws")
    proc = cf("build", "facts", "--facts", str(tmp_path / "nope"), "--corpus", str(tmp_path), "-w", ws, cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "nosuchfactsfolderorfile" in squeeze(proc.stderr)
    (tmp_path / "empty").mkdir()
    proc = cf("build", "facts", "--facts", str(KLAR), "--corpus", str(tmp_path / "empty"), "-w", ws, cwd=REPO, check=False)
    assert proc.returncode == 2 and "nocorpusshardsinthisfolder" in squeeze(proc.stderr)
    proc = cf("build", "facts", "--facts", str(KLAR), "--corpus", str(tmp_path), "--checkpoints", "10,x", "-w", ws, cwd=REPO, check=False)
    assert proc.returncode == 2 and "--checkpoints" in proc.stdout + proc.stderr
