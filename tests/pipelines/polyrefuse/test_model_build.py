"""The PolyRefuse build with model backends: translate, back-translate, check, corrections.

Real components: the OpenAI-compatible stub server (tests/pipelines/polyrefuse/openai_stub.py,
real HTTP), tiny Marian and Llama models built from configs (tiny_models.py), the translation
cache on disk, the local executor. The English prompts are the first rows of the real split files
(../shared/data/polyrefuse-sources/splits), written as a small sources folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.errors import InputError
from pipelines.core.executor import LocalExecutor
from pipelines.core.stage import REJECTS
from pipelines.polyrefuse.pipeline import build_polyrefuse, read_candidate
from pipelines.polyrefuse.settings import PolyRefuseSettings
from pipelines.polyrefuse.translate import BackendError
from schemas.polyrefuse import ROWS
from tests.pipelines.polyrefuse.openai_stub import OpenAIStub, fake_translation, undo_fake_translation
from validation.polyrefuse import validate_polyrefuse

REPO = Path(__file__).resolve().parents[3]
SPLITS = Path(os.environ.get("POLYREFUSE_SOURCES", REPO.parent / "shared" / "data" / "polyrefuse-sources")) / "splits"
pytestmark = pytest.mark.skipif(not SPLITS.is_dir(), reason=f"PolyRefuse split files not found in {SPLITS}")
PER_FILE = 3  # prompts taken from each of the six split files


def write_sources(folder: Path, extra: dict[str, list[str]] | None = None) -> Path:
    """The first PER_FILE rows of each split file, plus ``extra`` instructions per file stem."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(SPLITS.glob("*.json")):
        rows = json.loads(path.read_text(encoding="utf-8"))[:PER_FILE]
        rows += [{"instruction": text, "category": None} for text in (extra or {}).get(path.stem, [])]
        (folder / path.name).write_text(json.dumps(rows), encoding="utf-8")
    return folder


def http_settings(stub: OpenAIStub, languages=("de", "ja"), extra_harmless_test: int = 0, model=None, **translation) -> PolyRefuseSettings:
    n = PER_FILE
    return PolyRefuseSettings(
        languages=list(languages),
        sources={"harmless_sizes": None},
        translation={"backend": "http", "model": {"url": stub.url, "model": stub.model_id, **(model or {})}, "partitions": 3, **translation},
        validation={"expected_counts": {
            "harmful": {"train": n, "validation": n, "test": n},
            "harmless": {"train": n, "validation": n, "test": n + extra_harmless_test},
        }},
    )


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


def test_http_backend_translates_back_translates_and_records_provenance(stub, tmp_path):
    sources = write_sources(tmp_path / "src")
    settings = http_settings(stub, back_translation={"backend": "same"})
    result = build_polyrefuse(sources, settings, tmp_path / "ws" / "stages")
    assert list(result.steps) == ["import", "translate", "back_translate", "check", "assemble"]
    assert result.steps["translate"].stats["tasks"] == 3  # one task per partition
    rows = read_candidate(tmp_path / "ws" / "stages")["rows"]
    assert rows.schema == ROWS.polars_schema()
    n_prompts = 6 * PER_FILE
    assert rows.group_by("lang").len().sort("lang").rows() == [("de", n_prompts), ("en", n_prompts), ("ja", n_prompts)]
    translated = rows.filter(pl.col("lang") != "en")
    names = {"de": "German", "ja": "Japanese"}
    for r in translated.iter_rows(named=True):
        assert r["instruction"] == fake_translation(r["instruction_en"], names[r["lang"]])
        assert (r["backend"], r["model"]) == ("http", stub.model_id)
        assert r["model_version"].startswith(f"{stub.model_id}@/models/stub-translator-v1-")
        # back into English: the stub reverses its own reversal
        assert undo_fake_translation(r["back_translation"])[0] == "English"
    # the stub's "translations" are reversed English: no Japanese one is in Japanese script, and
    # flagged rows wait for proofreading
    assert all({"script", "language"} <= set(flags) for flags in translated.filter(pl.col("lang") == "ja")["flags"])
    pending = translated.filter(pl.col("flags").list.len() > 0)
    assert pending.height > n_prompts and set(pending["proofreading"]) == {"pending"}
    assert rows.filter(pl.col("lang") == "en")["back_translation"].null_count() == n_prompts
    # cache: the translations and back-translations of the build, nothing twice
    assert len(stub.completions()) == 2 * 2 * n_prompts
    again = build_polyrefuse(sources, settings, tmp_path / "ws" / "stages")
    assert all(o.skipped for o in again.steps.values()) and len(stub.completions()) == 4 * n_prompts
    # more languages: only the new language's texts are sent
    wider = settings.model_copy(update={"languages": ("en", "de", "ja", "ko")})
    build_polyrefuse(sources, wider, tmp_path / "ws" / "stages")
    assert len(stub.completions()) == 4 * n_prompts + 2 * n_prompts


def test_empty_and_wrong_language_outputs_are_flagged_and_named_by_validation(stub, tmp_path):
    sources = write_sources(tmp_path / "src", {"harmless_test": ["[[empty]] Name three rivers.", "[[english]] Name three lakes."]})
    settings = http_settings(stub, languages=("de",), extra_harmless_test=2)
    stages = tmp_path / "ws" / "stages"
    result = build_polyrefuse(sources, settings, stages)
    assert result.steps["translate"].stats["counters"]["failed_empty"] == 1
    rows = read_candidate(stages)["rows"].filter(pl.col("lang") == "de")
    empty = rows.filter(pl.col("instruction_en").str.starts_with("[[empty]]")).row(0, named=True)
    assert empty["instruction"] is None and "empty" in empty["flags"] and empty["proofreading"] == "pending"
    english = rows.filter(pl.col("instruction_en").str.starts_with("[[english]]")).row(0, named=True)
    assert english["instruction"] == english["instruction_en"]  # the server answered in English
    assert {"untranslated", "language"} <= set(english["flags"])
    assert any(r.startswith("untranslated:") for r in english["flag_reasons"])

    report = validate_polyrefuse(read_candidate(stages), settings, tmp_path / "validation", data_docs=False)
    failed = {c.name: c for c in report.checks if not c.success}
    assert "rows.instruction.not_empty" in failed
    assert f"{empty['row_id']}" in " ".join(map(str, failed["rows.instruction.not_empty"].failing_ids))
    # an empty output is not cached: a rerun with a server that now answers fills it
    assert len(stub.completions()) == 6 * PER_FILE + 2


def test_crash_mid_translation_rerun_translates_only_what_is_missing(stub, tmp_path):
    # the server fails this prompt 3 times (the backend retries twice): the first build crashes
    flaky = "[[status=500 times=3]] Name three mountains."
    sources = write_sources(tmp_path / "src", {"harmless_test": [flaky]})
    settings = http_settings(stub, languages=("de",), extra_harmless_test=1, partitions=1, model={"batch_size": 4, "concurrency": 1})
    stages = tmp_path / "ws" / "stages"
    with pytest.raises(BackendError, match="failed 3 times"):
        build_polyrefuse(sources, settings, stages)
    first = [e.body["messages"][0]["content"].rsplit("\n\n", 1)[1] for e in stub.completions()]
    # what the crashed run committed: every finished batch (the failed batch is not cached)
    with sqlite3.connect(tmp_path / "ws" / "translations.sqlite") as db:
        done_before = {t for (t,) in db.execute("SELECT source_text FROM translations")}
    assert 0 < len(done_before) < 6 * PER_FILE and done_before < set(first)
    result = build_polyrefuse(sources, settings, stages)
    second = [e.body["messages"][0]["content"].rsplit("\n\n", 1)[1] for e in stub.completions()][len(first):]
    assert not set(second) & done_before  # nothing committed is translated twice
    english = set(read_candidate(stages)["prompts"]["instruction_en"])
    assert set(second) | done_before == english and len(second) == len(english) - len(done_before)
    assert result.steps["translate"].stats["counters"]["cached"] == len(done_before)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tests.pipelines.polyrefuse.tiny_models import TINY_SEQ2SEQ, build_llama, build_marian, train_sentencepiece

    root = tmp_path_factory.mktemp("models")
    spm = train_sentencepiece()
    # real prompts are longer than the unit tests' sentences: room for 512 positions
    build_marian(root / "marian" / "en-de", spm, seed=0, size=dataclasses.replace(TINY_SEQ2SEQ, max_positions=512))
    return {"marian": root / "marian", "llama": build_llama(root / "llama", seed=0)}


@pytest.mark.parametrize("backend", ["seq2seq", "causal"])
def test_local_model_backends_build_in_partitions_and_resume_from_the_cache(backend, tiny_models, tmp_path):
    sources = write_sources(tmp_path / "src")
    model_dir = tiny_models["marian" if backend == "seq2seq" else "llama"]
    settings = PolyRefuseSettings(
        languages=["de"], sources={"harmless_sizes": None},
        translation={"backend": backend, "partitions": 2,
                     "model": {"model_dir": model_dir, "max_new_tokens": 6, "batch_size": 4, "device": "cpu"}},
    )
    stages = tmp_path / "ws" / "stages"
    result = build_polyrefuse(sources, settings, stages, executor=LocalExecutor(workers=2))
    counters = result.steps["translate"].stats["counters"]
    rows = read_candidate(stages)["rows"].filter(pl.col("lang") == "de")
    assert rows.height == 6 * PER_FILE and set(rows["backend"]) == {backend}
    assert rows["model"][0] == model_dir.name and len(set(rows["model_version"])) == 1
    assert counters.get("translated", 0) + counters.get("failed_empty", 0) == 6 * PER_FILE
    # random weights: outputs are noise, but every row is checked and carries its flags
    assert rows["flags"].list.len().min() >= 1
    # a new stages folder over the same cache: every translation is served from it
    again = build_polyrefuse(sources, settings, tmp_path / "ws2" / "stages", cache_path=tmp_path / "ws" / "translations.sqlite")
    assert again.steps["translate"].stats["counters"]["cached"] == counters.get("translated", 0)


def test_model_settings_name_what_is_missing():
    with pytest.raises(ValueError, match="model.model_dir"):
        PolyRefuseSettings(translation={"backend": "seq2seq"})
    with pytest.raises(ValueError, match="model.url and .*model.model"):
        PolyRefuseSettings(translation={"backend": "http", "model": {"url": "http://127.0.0.1:1"}})
    with pytest.raises(ValueError, match="back_translation.backend = same needs a model"):
        PolyRefuseSettings(translation={"back_translation": {"backend": "same"}})
    with pytest.raises(ValueError, match=r"unknown language code\(s\) 'xx'.*supported: en, de"):
        PolyRefuseSettings(languages=["de", "xx"])


def test_missing_model_directory_says_nothing_is_downloaded(tmp_path):
    settings = PolyRefuseSettings(languages=["de"], translation={"backend": "seq2seq", "model": {"model_dir": tmp_path / "absent"}})
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_polyrefuse(write_sources(tmp_path / "src"), settings, tmp_path / "stages")


# --------------------------------------------------------------------------- corrections


def _corrections(rows: pl.DataFrame, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    de = rows.filter(pl.col("lang") == "de").sort("row_id")
    ids = de["row_id"].to_list()
    machine = dict(zip(ids, de["instruction"]))
    plan = {ids[0]: "edited", ids[1]: "rejected", ids[2]: "accepted", ids[3]: "stale", ids[4]: "unsettled"}
    records = []
    for item, what in plan.items():
        pid, lang = item.rsplit(":", 1)
        records.append({
            "item_id": item, "prompt_id": pid, "lang": lang,
            "status": None if what == "unsettled" else ("edited" if what == "stale" else what),
            "translation_final": {"edited": "Korrigierte Fassung.", "stale": "Alt."}.get(what, machine[item] if what == "accepted" else None),
            "translation_machine": "an older machine translation" if what == "stale" else machine[item],
            "annotator": "anna@example.org", "annotated_at": "2026-11-20T10:00:00Z",
            "note": "not a translation" if what == "rejected" else None,
            "problem": "verdict edit with an empty translation: not applied" if what == "unsettled" else None,
        })
    records.append({**records[0], "item_id": "harmful-000000000000:de", "prompt_id": "harmful-000000000000"})
    path = tmp_path / "corrections.parquet"
    pl.DataFrame(records).write_parquet(path)
    return path, plan


def test_corrections_replace_translations_with_provenance_and_quarantine_the_rest(stub, tmp_path):
    sources = write_sources(tmp_path / "src")
    settings = http_settings(stub, languages=("de",))
    stages = tmp_path / "ws" / "stages"
    build_polyrefuse(sources, settings, stages)
    before = read_candidate(stages)["rows"]
    path, plan = _corrections(before, tmp_path)
    result = build_polyrefuse(sources, settings, stages, corrections=path)
    assert result.steps["translate"].skipped  # corrections never retranslate
    rows = {r["row_id"]: r for r in read_candidate(stages)["rows"].iter_rows(named=True)}
    old = {r["row_id"]: r for r in before.iter_rows(named=True)}
    by = {what: item for item, what in plan.items()}
    edited, rejected, accepted = rows[by["edited"]], rows[by["rejected"]], rows[by["accepted"]]
    assert (edited["instruction"], edited["instruction_machine"], edited["proofreading"]) == (
        "Korrigierte Fassung.", old[by["edited"]]["instruction"], "edited")
    assert (edited["proofread_by"], edited["proofread_at"]) == ("anna@example.org", "2026-11-20T10:00:00Z")
    assert (rejected["instruction"], rejected["instruction_machine"], rejected["proofreading"]) == (
        None, old[by["rejected"]]["instruction"], "rejected")
    assert rejected["proofreading_note"] == "not a translation"
    assert (accepted["instruction"], accepted["instruction_machine"], accepted["proofreading"]) == (
        old[by["accepted"]]["instruction"], None, "accepted")
    for what in ("stale", "unsettled"):  # not applied: the row is as it was
        assert rows[by[what]]["instruction"] == old[by[what]]["instruction"] and rows[by[what]]["proofreading"] == "pending"
    rejects = pl.read_parquet(stages / "assemble" / REJECTS)
    reasons = dict(zip(rejects["record_id"], rejects["drop_reason"]))
    assert reasons == {by["stale"]: "stale_correction", by["unsettled"]: "unsettled_correction",
                       "harmful-000000000000:de": "unknown_row"}
    assert result.steps["assemble"].stats["dropped"] == {"stale_correction": 1, "unknown_row": 1, "unsettled_correction": 1}

    # validation: the rejected row counts as declared missing, named in the coverage details
    report = validate_polyrefuse(read_candidate(stages), settings, tmp_path / "validation", data_docs=False)
    coverage = next(c for c in report.checks if c.name == "coverage.de")
    assert not coverage.success and "rejected at proofreading 1" in coverage.details
    assert by["rejected"] in coverage.failing_ids
    allowed = PolyRefuseSettings.model_validate({**settings.model_dump(), "validation": {
        **settings.validation.model_dump(), "allow_declared_missing": True}})
    report = validate_polyrefuse(read_candidate(stages), allowed, tmp_path / "validation2", data_docs=False)
    assert next(c for c in report.checks if c.name == "coverage.de").success
    assert next(c for c in report.checks if c.name == "rows.instruction.not_empty").success


def test_a_bad_corrections_file_is_named(stub, tmp_path):
    sources = write_sources(tmp_path / "src")
    settings = http_settings(stub, languages=("de",))
    with pytest.raises(InputError, match="no such corrections file"):
        build_polyrefuse(sources, settings, tmp_path / "stages", corrections=tmp_path / "absent.parquet")
    wrong = tmp_path / "wrong.parquet"
    pl.DataFrame({"item_id": ["x"]}).write_parquet(wrong)
    with pytest.raises(InputError, match=r"wrong.parquet.*missing column\(s\)"):
        build_polyrefuse(sources, settings, tmp_path / "stages", corrections=wrong)
