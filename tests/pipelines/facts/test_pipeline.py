"""The fact-frequency build: shards counted in parallel (local processes and Ray), merged by
summing, resumable, counts at checkpoints equal to recounts of corpus prefixes, bad shards
quarantined. The corpus is made here of sentences holding KLAR subjects and objects."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.executor import LocalExecutor
from pipelines.core.ray_executor import RayExecutor
from pipelines.facts.pipeline import build_facts, read_candidate
from pipelines.facts.settings import FactsSettings

REPO = Path(__file__).resolve().parents[3]
KLAR = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
pytestmark = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")
FILLER = {"en": "the report said that", "ja": "報告によると", "ru": "в докладе сказано", "ar": "قال التقرير"}


def klar_forms() -> list[tuple[str, str, str]]:
    out = []
    for lang_dir in sorted(KLAR.iterdir()):
        for f in sorted(lang_dir.glob("*.json"))[:3]:
            for s in json.loads(f.read_text(encoding="utf-8"))["samples"][:20]:
                out.append((lang_dir.name, s["subject"], s["object"]))
    return out


def write_corpus(folder: Path, shards: int = 4, docs_per_shard: int = 60, seed: int = 0) -> list[dict]:
    """Dolma-style shards (one gzip) with metadata.step increasing over the corpus; returns the documents."""
    rng = random.Random(seed)
    forms = klar_forms()
    folder.mkdir(parents=True, exist_ok=True)
    docs, step = [], 0
    for k in range(shards):
        lines = []
        for i in range(docs_per_shard):
            parts = []
            for _ in range(rng.randint(0, 3)):
                lang, subject, obj = rng.choice(forms)
                parts += [rng.choice(list(FILLER.values())), subject if rng.random() < 0.7 else "", obj if rng.random() < 0.6 else ""]
            step += rng.randint(1, 3)
            doc = {"id": f"s{k}-{i}", "text": " ".join(p for p in parts if p) or "nothing here", "metadata": {"step": step}}
            docs.append(doc)
            lines.append(json.dumps(doc, ensure_ascii=False))
        data = ("\n".join(lines) + "\n").encode()
        if k == 0:
            (folder / f"shard-{k}.jsonl.gz").write_bytes(gzip.compress(data))
        else:
            (folder / f"shard-{k}.jsonl").write_bytes(data)
    return docs


def settings(**update) -> FactsSettings:
    return FactsSettings(corpus={"step_field": "metadata.step"}, **update)


def totals(stages: Path) -> pl.DataFrame:
    return read_candidate(stages)["counts"].select("fact_id", "subject_docs", "object_docs", "cooccurrence_docs").sort("fact_id")


def test_parallel_build_counts_every_fact_and_resumes(tmp_path):
    write_corpus(tmp_path / "corpus")
    one = build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "one", LocalExecutor(1))
    assert one.steps["count"].stats["tasks"] == 4 and one.steps["count"].stats["counters"]["documents"] == 240
    counts = read_candidate(tmp_path / "one")["counts"]
    assert counts.height == 14_364 and counts["cooccurrence_docs"].sum() > 0
    assert counts.select((pl.col("cooccurrence_docs") <= pl.min_horizontal("subject_docs", "object_docs")).all()).item()
    two = build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "two", LocalExecutor(2))
    assert totals(tmp_path / "two").equals(totals(tmp_path / "one"))
    # nothing changed: nothing runs
    assert all(o.skipped for o in build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "one").steps.values())
    # a new shard: only the count and merge steps rerun, and the old shards' partials are recomputed
    # only because the step's inputs changed (the fingerprint covers every shard)
    extra = write_corpus(tmp_path / "more", shards=1, docs_per_shard=10, seed=3)
    grown = build_facts(KLAR, [tmp_path / "corpus", tmp_path / "more"], settings(), tmp_path / "one")
    assert grown.steps["facts"].skipped and not grown.steps["count"].skipped
    assert grown.steps["count"].stats["counters"]["documents"] == 240 + len(extra)


def test_an_interrupted_count_resumes_at_the_unfinished_shards(tmp_path, monkeypatch):
    import pipelines.facts.pipeline as facts_pipeline

    write_corpus(tmp_path / "corpus")
    real = facts_pipeline.count_shard
    seen: list[str] = []

    def flaky(unit, params, out):
        seen.append(Path(unit.path).name)
        if Path(unit.path).name == "shard-2.jsonl" and seen.count("shard-2.jsonl") == 1:
            raise RuntimeError("power cut while counting shard-2")
        real(unit, params, out)

    monkeypatch.setattr(facts_pipeline, "count_shard", flaky)
    with pytest.raises(RuntimeError, match="power cut"):
        build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "stages", LocalExecutor(1))
    resumed = build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "stages", LocalExecutor(1))
    assert resumed.steps["count"].stats["tasks_resumed"] == 2  # shard-0 and shard-1 were finished
    assert seen == ["shard-0.jsonl.gz", "shard-1.jsonl", "shard-2.jsonl", "shard-2.jsonl", "shard-3.jsonl"]
    fresh = build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "fresh", LocalExecutor(1))
    assert fresh.steps["count"].stats["tasks_resumed"] == 0
    assert totals(tmp_path / "stages").equals(totals(tmp_path / "fresh"))


def test_ray_gives_the_same_counts_as_the_local_executor(tmp_path, ray_owner):
    write_corpus(tmp_path / "corpus")
    s = settings(checkpoints=(100, 300))
    build_facts(KLAR, [tmp_path / "corpus"], s, tmp_path / "local", LocalExecutor(1))
    on_ray = build_facts(KLAR, [tmp_path / "corpus"], s, tmp_path / "ray", RayExecutor())
    assert on_ray.steps["count"].stats["tasks"] == 4
    local, ray = read_candidate(tmp_path / "local"), read_candidate(tmp_path / "ray")
    for table in ("counts", "checkpoint_counts"):
        assert ray[table].equals(local[table]), table


def test_counts_at_checkpoints_equal_recounts_of_the_corpus_prefixes(tmp_path):
    docs = write_corpus(tmp_path / "corpus")
    checkpoints = (50, 200, 400)
    build_facts(KLAR, [tmp_path / "corpus"], settings(checkpoints=checkpoints), tmp_path / "all")
    at = read_candidate(tmp_path / "all")["checkpoint_counts"]
    for c in checkpoints:
        prefix = tmp_path / f"prefix-{c}"
        prefix.mkdir()
        kept = [d for d in docs if d["metadata"]["step"] <= c]
        (prefix / "prefix.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in kept), encoding="utf-8")
        build_facts(KLAR, [prefix], settings(), tmp_path / f"stages-{c}")
        recount = totals(tmp_path / f"stages-{c}")
        mine = at.filter(pl.col("checkpoint") == c).select(recount.columns).sort("fact_id")
        assert mine.equals(recount), c
    # cumulative: never decreasing from one checkpoint to the next
    wide = at.sort("fact_id", "checkpoint").group_by("fact_id", maintain_order=True).agg(pl.col("cooccurrence_docs"))
    assert all(a <= b for seq in wide["cooccurrence_docs"] for a, b in zip(seq, seq[1:]))


def test_a_broken_shard_is_quarantined_and_the_rest_is_counted(tmp_path):
    write_corpus(tmp_path / "corpus")
    broken = tmp_path / "corpus" / "shard-0.jsonl.gz"
    broken.write_bytes(broken.read_bytes()[:-30])  # truncated
    with (tmp_path / "corpus" / "shard-1.jsonl").open("a", encoding="utf-8") as f:
        f.write('{"id": "bad", "text": \n{"id": "empty", "text": ""}\n')
    result = build_facts(KLAR, [tmp_path / "corpus"], settings(), tmp_path / "stages")
    dropped = result.steps["count"].stats["dropped"]
    assert dropped == {"broken_compression": 1, "malformed_json": 1, "no_text": 1}
    assert result.steps["count"].stats["counters"]["documents"] == 180  # three intact shards
    rejects = pl.read_parquet(tmp_path / "stages" / "count" / "_rejects")
    assert any(str(broken) in (d or "") + (f or "") for d, f in zip(rejects["detail"], rejects["source_file"]))
