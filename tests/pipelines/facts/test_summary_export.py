"""Per-language summary, the paper's log bins, the summary plot, the paper's JSON layout and the
card: on a hand-made frame, and on a real candidate (KLAR counted over a tiny corpus)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pipelines.facts.card import LICENSE_NOTE, PLOT_FILE, SUMMARY, TITLE, card_body
from pipelines.facts.export import SAMPLE_KEYS, export_paper_json, read_paper_json
from pipelines.facts.pipeline import build_facts, read_candidate
from pipelines.facts.settings import FactsSettings
from pipelines.facts.summary import ZERO_BIN, bin_edges, frequency_bins, language_summary, plot_summary

REPO = Path(__file__).resolve().parents[3]
KLAR = Path(os.environ.get("KLAR_DIR", REPO.parent / "shared" / "data" / "klar"))
needs_klar = pytest.mark.skipif(not KLAR.is_dir(), reason=f"KLAR not found at {KLAR}")
CHECKPOINTS = (15, 35)
# (text, step): en "Ankara"/"Turkey" (index 3751) co-occur 3 times (steps 10, 20, 40), "Edmonton"/"Alberta"
# (3750) once in en and fr (same forms), fr 3751 once, ja 3751 once without a step, ru 3751 once after
# the last checkpoint; "Amsterdam" (3752) alone.
DOCUMENTS = [
    ("Ankara is the capital of Turkey.", 10), ("Turkey's capital: Ankara", 20), ("Ankara (Turkey)", 40),
    ("Edmonton, Alberta", 5), ("Ankara, Turquie", 30), ("アンカラはトルコの首都", None), ("Анкара, Турция", 50),
    ("Amsterdam", 1),
]


def build_klar_candidate(root: Path, checkpoints: tuple[int, ...] = CHECKPOINTS) -> dict[str, pl.DataFrame]:
    """KLAR counted over :data:`DOCUMENTS` (one JSONL shard under ``root``): the candidate tables."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (text, step) in enumerate(DOCUMENTS):
        lines.append(json.dumps({"id": f"d{i}", "text": text, **({"metadata": {"step": step}} if step is not None else {})},
                                ensure_ascii=False))
    shard = root / "shard.jsonl"
    shard.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = FactsSettings(checkpoints=checkpoints, corpus={"step_field": "metadata.step"})
    build_facts(KLAR, [shard], settings, root / "stages")
    return read_candidate(root / "stages")


@pytest.fixture(scope="module")
def candidate(tmp_path_factory) -> dict[str, pl.DataFrame]:
    if not KLAR.is_dir():
        pytest.skip(f"KLAR not found at {KLAR}")
    return build_klar_candidate(tmp_path_factory.mktemp("facts-summary"))


def fact(counts: pl.DataFrame, lang: str, index: int) -> dict:
    return counts.filter(lang=lang, index=index).row(0, named=True)


# --------------------------------------------------------------------------- hand-made frame

HAND = pl.DataFrame({
    "lang": ["de", "ja", "en", "en", "en", "ja", "en", "en", "ja"],
    "cooccurrence_docs": [7, 0, 0, 2, 100, 5, 1, 0, 5],
})


def test_language_summary_medians_zeros_and_order() -> None:
    summary = language_summary(HAND)
    assert summary.columns == ["lang", "facts", "median", "zero_facts", "zero_share", "max", "mean"]
    assert summary.get_column("lang").to_list() == ["en", "ja", "de"]  # KLAR's order, others after
    rows = {r["lang"]: r for r in summary.iter_rows(named=True)}
    assert rows["en"] == {"lang": "en", "facts": 5, "median": 1.0, "zero_facts": 2, "zero_share": 0.4, "max": 100, "mean": 20.6}
    assert (rows["ja"]["median"], rows["ja"]["zero_facts"], rows["ja"]["max"]) == (5.0, 1, 5)
    assert rows["ja"]["zero_share"] == pytest.approx(1 / 3) and rows["ja"]["mean"] == pytest.approx(10 / 3)
    assert (rows["de"]["facts"], rows["de"]["zero_facts"], rows["de"]["zero_share"]) == (1, 0, 0.0)
    assert language_summary(HAND.clear()).height == 0


def test_frequency_bins_match_numpy_histogram_over_the_papers_edges() -> None:
    bins = frequency_bins(HAND)
    assert bins.columns == ["lang", "bin", "label", "lower", "upper", "facts"]
    assert bins.height == 3 * 31 and bins.get_column("bin").to_list()[:31] == list(range(31))
    edges = np.logspace(0, np.log10(101), 31)  # the paper's: 30 bins from 1 to max + 1
    assert np.allclose(bin_edges(100), edges)
    for lang in ("en", "ja", "de"):
        mine = bins.filter(lang=lang).sort("bin")
        values = HAND.filter(lang=lang).get_column("cooccurrence_docs").to_numpy()
        expected, _ = np.histogram(values[values > 0], bins=edges)
        assert mine.get_column("facts").to_list() == [int((values == 0).sum()), *expected.tolist()]
        assert np.allclose(mine.get_column("lower").to_numpy()[1:], edges[:-1])
        assert np.allclose(mine.get_column("upper").to_numpy()[1:], edges[1:])
    zero = bins.filter(bin=0).row(0, named=True)
    assert (zero["label"], zero["lower"], zero["upper"]) == (ZERO_BIN, 0.0, 1.0)
    en = {r["bin"]: r["facts"] for r in bins.filter(lang="en").iter_rows(named=True)}
    assert en[0] == 2 and en[1] == 1 and en[30] == 1  # 1 in the first bin, the maximum in the last
    assert bins.filter(lang="en", bin=30).item(0, "label") == f"[{edges[29]:.4g}, {edges[30]:.4g})"


def test_frequency_bins_edge_cases() -> None:
    zeros = frequency_bins(pl.DataFrame({"lang": ["en", "en"], "cooccurrence_docs": [0, 0]}), n_bins=5)
    assert zeros.get_column("facts").to_list() == [2, 0, 0, 0, 0, 0]
    three = frequency_bins(HAND, n_bins=3)
    assert three.filter(lang="en").get_column("facts").to_list() == [2, 2, 0, 1]  # 1, 2 | - | 100
    with pytest.raises(ValueError, match="negative"):
        frequency_bins(pl.DataFrame({"lang": ["en"], "cooccurrence_docs": [-1]}))
    with pytest.raises(ValueError, match="lacks columns"):
        language_summary(pl.DataFrame({"lang": ["en"]}))


# --------------------------------------------------------------------------- the real candidate


@needs_klar
def test_plot_is_a_png_of_twelve_languages(candidate, tmp_path) -> None:
    counts = candidate["counts"]
    assert counts.get_column("lang").n_unique() == 12
    path = plot_summary(counts, tmp_path / PLOT_FILE, corpus_name="tiny test corpus")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000
    assert [p.name for p in tmp_path.iterdir()] == [PLOT_FILE]  # written atomically: no temporary left


@needs_klar
def test_paper_json_layout_and_round_trip(candidate, tmp_path) -> None:
    counts = candidate["counts"]
    en = fact(counts, "en", 3751)
    assert (en["subject"], en["object"], en["cooccurrence_docs"]) == ("Ankara", "Turkey", 3)
    assert fact(counts, "fr", 3750)["cooccurrence_docs"] == 1 and fact(counts, "ja", 3751)["cooccurrence_docs"] == 1

    path = export_paper_json(counts, tmp_path / "frequencies.json")
    text = path.read_text(encoding="utf-8")
    assert "アンカラ" in text and text.endswith("}\n")  # UTF-8, not escaped
    data = json.loads(text)
    assert list(data) == sorted(data) and len(data) == 12
    for lang, relations in data.items():
        assert list(relations) == sorted(relations) and len(relations) == 12
        for samples in relations.values():
            indices = [s["index"] for s in samples]
            assert indices == sorted(indices)
            assert all(tuple(s) == SAMPLE_KEYS for s in samples)
        assert sum(len(s) for s in relations.values()) == 1197
    ankara = next(s for s in data["en"]["capital_of"] if s["index"] == 3751)
    assert ankara == {"subject": "Ankara", "object": "Turkey", "index": 3751, "frequency": 3}

    back = read_paper_json(path)
    expected = counts.select("lang", "relation", "index", "subject", "object", pl.col("cooccurrence_docs").alias("frequency"))
    assert back.equals(expected.sort("lang", "relation", "index"))
    assert export_paper_json(back.rename({"frequency": "cooccurrence_docs"}), tmp_path / "again.json").read_text() == text


def test_read_paper_json_names_a_bad_layout(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"en": {"capital_of": [{"subject": "Ankara", "object": "Turkey", "index": 1}]}}))
    with pytest.raises(ValueError, match=r"en/capital_of\[0\]: a sample needs the keys"):
        read_paper_json(path)
    path.write_text(json.dumps({"en": []}))
    with pytest.raises(ValueError, match="en: expected an object of relations"):
        read_paper_json(path)


@needs_klar
def test_card_body_states_corpus_rules_summary_and_checkpoints(candidate) -> None:
    settings = FactsSettings(checkpoints=CHECKPOINTS, corpus={"step_field": "metadata.step"})
    record = {
        "name": "tiny test corpus",
        "shards": [{"name": "shard.jsonl", "sha256": "ab" * 32, "bytes": 321, "documents": len(DOCUMENTS)}],
        "documents": len(DOCUMENTS),
        "bytes": 321,
    }
    body = card_body(settings, language_summary(candidate["counts"]), record, list(CHECKPOINTS))
    assert "**tiny test corpus**: 8 documents counted, 321 bytes in 1 shard" in body
    assert f"| shard.jsonl | `{'ab' * 32}` | 321 | 8 |" in body
    assert "NFKC-normalised and casefolded" in body and "(`ko`, `tr`)" in body and "`Han`, `Hiragana`" in body
    assert "| en | 1,197 | 0 | 0.0 | 3 | 1,195 | 99.8% |" in body
    assert f"]({PLOT_FILE})" in body
    assert "2 training steps: 15, 35." in body and "`metadata.step` field" in body
    no_checkpoints = card_body(FactsSettings(), language_summary(candidate["counts"]).to_dicts(), record, [])
    assert "None: counts are over the whole corpus only" in no_checkpoints
    assert TITLE and SUMMARY and "KLAR" in LICENSE_NOTE
