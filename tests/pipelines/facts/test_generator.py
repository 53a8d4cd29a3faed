"""The synthetic corpus generator: the engine's counts equal the planted truth exactly.

One small corpus (about 3 MB, every format) over the real KLAR facts serves most tests; it is
counted by the engine and :mod:`pipelines.facts.count` the way the pipeline counts a shard.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from pipelines.facts.count import add_partials, buckets_of, compile_phrases, count_matches, merge_partials
from pipelines.facts.facts import read_facts
from pipelines.facts.generator import DOCS_PER_STEP, FORMATS, GeneratedCorpus, ReferenceMatcher
from pipelines.facts.generator import generate_corpus, iter_documents, load_generated
from pipelines.core.phrases import MatchSettings, normalise

REPO = Path(__file__).resolve().parents[3]
KLAR = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
LANGS = ("en", "fr", "es", "ar", "zh", "ru", "ja", "tr", "uk", "ca", "ko", "el")
COUNTS = ["subject_docs", "object_docs", "cooccurrence_docs"]
SEED = 7

pytestmark = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")


@pytest.fixture(scope="module")
def facts() -> pl.DataFrame:
    return read_facts(KLAR).facts


@pytest.fixture(scope="module")
def corpus(facts, tmp_path_factory) -> GeneratedCorpus:
    return generate_corpus(facts, tmp_path_factory.mktemp("synth"), target_bytes=3_000_000, seed=SEED,
                           shard_bytes=1_000_000, formats=FORMATS, checkpoints=[5, 20, 40])


@pytest.fixture(scope="module")
def documents(corpus) -> list[tuple[str, int | None]]:
    return [doc for path in corpus.files["jsonl.zst"] for doc in iter_documents(path)]


@pytest.fixture(scope="module")
def engine(facts):
    return compile_phrases(facts, MatchSettings())


def engine_counts(engine, facts, documents, checkpoints, batch: int = 500) -> tuple[pl.DataFrame, pl.DataFrame]:
    phrases, sides = engine
    partials = []
    for k in range(0, len(documents), batch):
        texts = [t for t, _ in documents[k:k + batch]]
        steps = [s for _, s in documents[k:k + batch]]
        partials.append(count_matches(phrases.match(texts), sides, buckets_of(steps, len(texts), checkpoints)))
    return merge_partials(facts, add_partials(partials), checkpoints)


def test_engine_counts_equal_the_planted_truth(corpus, facts, documents, engine) -> None:
    totals, at = engine_counts(engine, facts, documents, corpus.checkpoints)
    assert totals.sort("fact_id").equals(corpus.truth.sort("fact_id"))
    assert at.sort("fact_id", "checkpoint").equals(corpus.checkpoint_truth.sort("fact_id", "checkpoint"))
    # Every language has documents, and facts of every language were found, on both sides.
    found = corpus.truth.join(facts.select("fact_id", "lang"), on="fact_id")
    per_lang = found.group_by("lang").agg(pl.col(c).gt(0).sum() for c in COUNTS)
    assert sorted(per_lang["lang"]) == sorted(LANGS)
    assert per_lang.filter(pl.any_horizontal(pl.col(c) == 0 for c in COUNTS)).height == 0
    # Every variant kind and guard was planted.
    for kind in ("plain", "upper", "title", "fullwidth", "compat", "nfd", "guard_cjk", "guard_“”", "guard_[[]]", "guard_「」"):
        assert corpus.plants.get(kind, 0) > 0, kind


def test_checkpoint_truth_equals_recounting_each_prefix(corpus, facts, documents, engine) -> None:
    steps = [s for _, s in documents]
    assert steps == sorted(steps)
    for checkpoint in corpus.checkpoints:
        prefix = [d for d in documents if d[1] <= checkpoint]
        totals, _ = engine_counts(engine, facts, prefix, ())
        expected = corpus.checkpoint_truth.filter(pl.col("checkpoint") == checkpoint).drop("checkpoint")
        assert totals.sort("fact_id").equals(expected.sort("fact_id")), checkpoint


def test_formats_hold_the_same_documents(corpus, documents) -> None:
    texts = [t for t, _ in documents]
    for fmt in FORMATS:
        assert [t for path in corpus.files[fmt] for t, _ in iter_documents(path)] == texts, fmt
    assert len(corpus.files["jsonl.zst"]) >= 2  # shard_bytes split the corpus
    first = json.loads(next(iter_lines(corpus.files["jsonl.gz"][0])))
    assert set(first) == {"id", "text", "source", "metadata"} and set(first["metadata"]) == {"lang", "step"}


def iter_lines(path: Path):
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        yield from f


def test_deterministic_per_seed_and_prefix_of_a_larger_corpus(corpus, facts, documents, engine, tmp_path) -> None:
    small = generate_corpus(facts, tmp_path / "a", target_bytes=600_000, seed=SEED, shard_bytes=1_000_000)
    again = generate_corpus(facts, tmp_path / "b", target_bytes=600_000, seed=SEED, shard_bytes=1_000_000)
    assert small.files["jsonl.zst"][0].read_bytes() == again.files["jsonl.zst"][0].read_bytes()
    assert small.truth.equals(again.truth)
    ours = list(iter_documents(small.files["jsonl.zst"][0]))
    assert ours == documents[:len(ours)]  # the same draws: a prefix of the 3 MB corpus
    totals, _ = engine_counts(engine, facts, ours, ())
    assert totals.sort("fact_id").equals(small.truth.sort("fact_id"))
    loaded = load_generated(tmp_path / "a")
    assert loaded.truth.equals(small.truth) and loaded.n_docs == small.n_docs and loaded.checkpoints == small.checkpoints

    # Default checkpoints: where the text reaches k/8 of the target; the last is the last step.
    assert len(small.checkpoints) == 8 and small.checkpoints[-1] == (small.n_docs - 1) // DOCS_PER_STEP
    last = small.checkpoint_truth.filter(pl.col("checkpoint") == small.checkpoints[-1]).drop("checkpoint")
    assert last.equals(small.truth)

    other = generate_corpus(facts, tmp_path / "c", target_bytes=200_000, seed=SEED + 1, steps=False)
    assert other.checkpoints == () and other.checkpoint_truth.height == 0
    theirs = list(iter_documents(other.files["jsonl.zst"][0]))
    assert theirs[:5] != ours[:5] and {step for _, step in theirs} == {None}


def test_reference_matcher_rules() -> None:
    settings = MatchSettings()
    phrases = [("Paris", "en"), ("パリ", "ja"), ("Ali", "tr"), ("Turkey", "en"), ("中国", "zh")]
    ref = ReferenceMatcher(phrases, settings)
    assert ref.mentions(normalise("Ｐａｒｉｓ", settings)) == {0}
    assert ref.mentions("オバマとparisは") == {0}  # kana beside Latin is a boundary
    assert ref.mentions("パリス") == {1}  # substring rule
    assert ref.mentions("alinin") == {2}  # start only (tr)
    assert ref.mentions("turkeys") == set()
    assert ref.mentions("xalix") == set()
    assert ref.mentions("在中国的") == {4}


def test_bench_runs_on_a_tiny_corpus(tmp_path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "facts_count.py"), "--size", "2MB", "--json", str(out),
         "--naive-bytes", "30KB", "--no-ray", "--facts", str(KLAR)],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text())
    names = {row["name"] for row in result["rows"]}
    assert {"ours", "grep -F -c -f", "naive loop"} <= names
    assert result["truth_equal"] is True
    assert [r["peak_rss_mb"] > 0 for r in result["peak_rss_mb"]["runs"]] == [True, True]
    assert {t["target"].split(" ")[0] for t in result["targets"]} == {"ours"}
    assert "PASS" in run.stdout or "MISS" in run.stdout
