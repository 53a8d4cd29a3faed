"""PolyRefuse through the command line: build (published backend, German sample), validate,
release, load with `datasets`, export in the published layout, bad input."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.corpusforge.test_cli_sad import REPO, cf

SOURCES = Path(os.environ.get("POLYREFUSE_SOURCES", REPO.parent / "shared" / "data" / "polyrefuse-sources"))
SAMPLE = SOURCES.parent / "polyrefuse-sample"
pytestmark = pytest.mark.skipif(
    not (SAMPLE.is_dir() and (SOURCES / "splits").is_dir()), reason=f"PolyRefuse data not found beside {SOURCES}"
)
ABSENT = ("ar", "es", "fr", "it", "ja", "ko", "nl", "pl", "ru", "th", "yo", "zh")
GERMAN = ("--languages", "de,en")


def squeeze(text: str) -> str:
    """Without whitespace: rich wraps long lines (paths too) at the terminal width."""
    return "".join(text.split())


def build_args(ws: Path, translations: Path = SAMPLE) -> list[str]:
    return ["build", "polyrefuse", "--sources", str(SOURCES), "--backend", "published",
            "--translations", str(translations), *GERMAN, "--workspace", str(ws)]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("cli-polyrefuse") / "ws"
    proc = cf(*build_args(ws), cwd=REPO)
    assert "Declared missing" not in proc.stdout  # every German file aligns
    return ws


def test_help():
    for args in (["build", "polyrefuse", "--help"], ["validate", "polyrefuse", "--help"],
                 ["release", "polyrefuse", "--help"], ["export", "--help"], ["export", "polyrefuse", "--help"]):
        assert "Usage" in cf(*args, cwd=REPO).stdout


def test_rerun_skips_unchanged_steps(built):
    proc = cf(*build_args(built), cwd=REPO)
    assert proc.stdout.count("up to date") == 3 and "built in" not in proc.stdout


def test_validation_with_all_languages_fails_naming_the_twelve_missing(built):
    proc = cf("validate", "polyrefuse", "-w", str(built), cwd=REPO, check=False)
    assert proc.returncode == 1 and "VERDICT: FAIL" in proc.stdout
    assert f"absent languages (12): {', '.join(ABSENT)}" in proc.stdout
    verdict = proc.stdout.splitlines()[-2 if proc.stdout.splitlines()[-1].startswith("Data Docs") else -1]
    assert all(f"coverage.{lang}" in verdict for lang in ABSENT)


def test_release_refused_while_validation_fails_then_released_load_and_export(built, tmp_path):
    ws = built
    # all fourteen languages (the default): twelve are absent, validation fails, the release is refused
    proc = cf("release", "polyrefuse", "--version", "0.1.0", "-w", str(ws), cwd=REPO, check=False)
    assert proc.returncode == 2 and "coverage.fr" in proc.stderr and "Traceback" not in proc.stderr
    assert not (ws / "releases" / "polyrefuse" / "0.1.0").exists()
    # English and German: complete, the release goes through
    cf("validate", "polyrefuse", *GERMAN, "-w", str(ws), cwd=REPO)
    proc = cf("release", "polyrefuse", "--version", "0.1.0", *GERMAN, "-w", str(ws), cwd=REPO)
    rel = ws / "releases" / "polyrefuse" / "0.1.0"
    assert f"Released PolyRefuse 0.1.0 at {rel}" in proc.stdout
    assert cf("release", "verify", str(rel), cwd=REPO).returncode == 0

    import datasets

    by = lambda ds, label: {s: sum(1 for x in ds[s]["label"] if x == label) for s in ("train", "validation", "test")}  # noqa: E731
    published = {1: {"train": 260, "validation": 39, "test": 572}, 0: {"train": 200, "validation": 200, "test": 500}}
    de = datasets.load_dataset(str(rel), "de")
    assert {label: by(de, label) for label in (0, 1)} == published
    assert de["train"].features["label"].names == ["harmless", "harmful"]
    assert type(de["train"].features["label"]).__name__ == "ClassLabel"
    en = datasets.load_dataset(str(rel), "en")
    assert {label: by(en, label) for label in (0, 1)} == published
    assert set(en["test"]["backend"]) == {"source"} and set(de["test"]["backend"]) == {"published"}
    parallel = datasets.load_dataset(str(rel), "parallel")
    assert parallel["test"].num_rows == 1072 and parallel["train"].num_rows == 460
    assert {"en", "de"} <= set(parallel["train"].column_names) and None not in parallel["train"]["de"]

    manifest = json.loads((rel / "manifest.json").read_text())
    assert manifest["languages"] == ["en", "de"] and manifest["declared_missing"] == []
    card = (rel / "README.md").read_text()
    assert "## Rows per language" in card and "## Automatic checks: flagged rows per check" in card
    assert "PolyRefuse's own subsets" in card and str(SAMPLE) not in card

    # export of the release reproduces every German file of the published sample, byte for byte
    out = tmp_path / "export"
    cf("export", "polyrefuse", "--layout", "published", "--out", str(out), "--version", "0.1.0", "-w", str(ws), cwd=REPO)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {p.name: p.read_bytes() for p in SAMPLE.glob("*_translated_de.json")}
    # and the current candidate exports the same
    out2 = tmp_path / "export-candidate"
    cf("export", "polyrefuse", "--out", str(out2), *GERMAN, "-w", str(ws), cwd=REPO)
    assert {p.name: p.read_bytes() for p in out2.iterdir()} == {p.name: p.read_bytes() for p in out.iterdir()}


def test_a_german_file_with_a_wrong_row_count_exits_2_naming_it(tmp_path):
    folder = tmp_path / "published"
    shutil.copytree(SAMPLE, folder)
    bad = folder / "harmful_test_translated_de.json"
    bad.chmod(0o644)
    bad.write_text(json.dumps(json.loads(bad.read_text())[:571], indent=4))
    proc = cf(*build_args(tmp_path / "ws", folder), cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert squeeze(f"{bad}: 571 rows, but the English harmful test split has 572") in squeeze(proc.stderr)


def test_an_unknown_language_is_a_clear_error(tmp_path):
    args = build_args(tmp_path / "ws")
    args[args.index("de,en")] = "de,xx"
    proc = cf(*args, cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    message = squeeze(proc.stderr)
    assert squeeze("unknown language code(s) 'xx'; supported: en, de, es, fr, it, nl, pl, ja, ko, zh, ar, th, ru, yo") in message
    proc = cf("build", "polyrefuse", "--sources", str(SOURCES), "--languages", "de", "-w", str(tmp_path / "ws"), cwd=REPO, check=False)
    assert proc.returncode == 2 and "--translationsDIR" in squeeze(proc.stderr)


def test_model_backend_through_the_command_line_and_its_errors(tmp_path):
    from tests.pipelines.polyrefuse.openai_stub import OpenAIStub
    from tests.pipelines.polyrefuse.test_model_build import write_sources

    sources = write_sources(tmp_path / "src")
    ws = str(tmp_path / "ws")
    small = ("--set", "polyrefuse.sources.harmless_sizes=[3, 3, 3]")
    with OpenAIStub() as stub:
        proc = cf("build", "polyrefuse", "--sources", str(sources), "--backend", "http", "--url", stub.url,
                  "--model", stub.model_id, "--back-translation", "same", "--languages", "de", "-w", ws, *small, cwd=REPO)
        assert "translate" in proc.stdout and "back_translate" in proc.stdout
        assert len(stub.completions()) == 2 * 6 * 3  # 18 prompts, there and back
    # the server is gone: a clear error naming it, no traceback
    proc = cf("build", "polyrefuse", "--sources", str(sources), "--backend", "http", "--url", stub.url,
              "--model", stub.model_id, "--languages", "de,ja", "-w", ws, *small, cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert squeeze(f"cannot reach the translation server at {stub.url}/v1/models") in squeeze(proc.stderr)
    proc = cf("build", "polyrefuse", "--sources", str(sources), "--backend", "seq2seq", "--model", str(tmp_path / "no-model"),
              "--languages", "de", "-w", ws, *small, cwd=REPO, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "neverdownloaded" in squeeze(proc.stderr)
    proc = cf("build", "polyrefuse", "--sources", str(sources), "--backend", "http", "--languages", "de", "-w", ws, *small, cwd=REPO, check=False)
    assert proc.returncode == 2 and "model.url" in squeeze(proc.stderr)
