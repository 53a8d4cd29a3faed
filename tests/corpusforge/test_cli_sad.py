"""The command line end to end on the bundled sample: build, validate, release, verify, diff."""

from __future__ import annotations

import contextlib
import io
import json
import traceback
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SAD_SAMPLE

REPO = Path(__file__).resolve().parents[2]


def cf(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real entry point in-process (fast); exit code, stdout and stderr as a process would."""
    from corpusforge.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = ["corpusforge", *args]
    code = 0
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception:  # an unexpected exception escapes main(): a process would print a traceback
        code = 1
        err.write("Traceback (most recent call last):\n" + traceback.format_exc())
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    proc = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check and code != 0:
        raise AssertionError(f"corpusforge {' '.join(args)} failed ({code}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_console_script_runs_as_a_process():
    proc = subprocess.run([sys.executable, "-m", "corpusforge", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "build" in proc.stdout and "release" in proc.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("cli") / "ws"
    cf("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "--workspace", str(ws), cwd=REPO)
    return ws


def test_help_everywhere():
    for args in (["--help"], ["build", "--help"], ["build", "sad", "--help"], ["validate", "sad", "--help"],
                 ["release", "--help"], ["release", "sad", "--help"], ["release", "verify", "--help"],
                 ["release", "diff", "--help"], ["annotate", "--help"], ["experiment", "--help"], ["generate", "sad", "--help"]):
        proc = cf(*args, cwd=REPO)
        assert "Usage" in proc.stdout


def test_validate_release_verify_and_immutability(built):
    ws = built
    proc = cf("validate", "sad", "-w", str(ws), cwd=REPO)
    assert "VERDICT: PASS" in proc.stdout
    proc = cf("release", "sad", "--version", "0.1.0", "-w", str(ws), cwd=REPO)
    rel = ws / "releases" / "sad" / "0.1.0"
    assert f"Released SAD 0.1.0 at {rel}" in proc.stdout
    assert cf("release", "verify", str(rel), cwd=REPO).returncode == 0
    before = (rel / "checksums.sha256").read_text()
    proc = cf("release", "sad", "--version", "0.1.0", "-w", str(ws), cwd=REPO, check=False)
    assert proc.returncode == 2 and "immutable" in proc.stderr and "Traceback" not in proc.stderr
    assert (rel / "checksums.sha256").read_text() == before
    # a modified byte is detected and named
    victim = sorted((rel / "dialogues").glob("*.parquet"))[0]
    victim.chmod(0o644)  # releases are written read-only
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    proc = cf("release", "verify", str(rel), cwd=REPO, check=False)
    assert proc.returncode == 1 and victim.name in proc.stdout


def test_release_is_refused_while_validation_fails(built, tmp_path):
    # A build whose candidate breaks a configured bound: validation fails, the release is refused.
    ws = built
    proc = cf("validate", "sad", "-w", str(ws), "--set", "sad.validation.max_dialogues=3", cwd=REPO, check=False)
    assert proc.returncode == 1 and "FAIL" in proc.stdout and "dialogues.row_count" in proc.stdout
    proc = cf("release", "sad", "--bump", "minor", "-w", str(ws), "--set", "sad.validation.max_dialogues=3", cwd=REPO, check=False)
    assert proc.returncode == 2 and "validation of the current SAD candidate failed" in proc.stderr
    assert not (ws / "releases" / "sad" / "0.2.0").exists()


def test_rebuild_with_other_rules_bump_and_diff(built):
    ws = built
    cf("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "-w", str(ws), "--set", "sad.rules.min_words=12", cwd=REPO)
    cf("validate", "sad", "-w", str(ws), cwd=REPO)
    proc = cf("release", "sad", "--bump", "minor", "-w", str(ws), cwd=REPO)
    assert "Released SAD 0.2.0" in proc.stdout
    proc = cf("release", "diff", str(ws / "releases/sad/0.1.0"), str(ws / "releases/sad/0.2.0"), "--json", cwd=REPO)
    report = json.loads(proc.stdout)
    assert report  # the exact-change diff is covered in tests/releases; here: the command runs on real releases
    manifest = json.loads((ws / "releases/sad/0.2.0/manifest.json").read_text())
    assert manifest["config"]["rules"]["min_words"] == 12
    assert manifest["validation"]["success"] is True
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])


def test_release_shards_splits_by_setting_and_loads_the_same_rows(built, tmp_path):
    ws = tmp_path / "ws"
    shutil.copytree(built, ws, ignore=shutil.ignore_patterns("releases"))  # other tests release into `built`
    cf("validate", "sad", "-w", str(ws), cwd=REPO)
    cf("release", "sad", "--version", "0.1.0", "-w", str(ws), "--set", "release.max_rows_per_file=10",
       "--set", "release.row_group_size=4", cwd=REPO)
    rel = ws / "releases" / "sad" / "0.1.0"
    assert cf("release", "verify", str(rel), cwd=REPO).returncode == 0
    manifest = json.loads((rel / "manifest.json").read_text())
    train = manifest["configs"]["utterances"]["splits"]["train"]
    files = sorted((rel / "utterances").glob("train-*.parquet"))
    assert len(files) == -(-train // 10) > 1 and files[0].name == f"train-00000-of-{len(files):05d}.parquet"
    import pyarrow.parquet as pq

    meta = [pq.ParquetFile(f).metadata for f in files]
    assert all(m.num_rows <= 10 for m in meta) and sum(m.num_rows for m in meta) == train
    assert max(m.row_group(i).num_rows for m in meta for i in range(m.num_row_groups)) == 4
    from datasets import load_dataset

    assert load_dataset(str(rel), "utterances", split="train").num_rows == train
    proc = cf("release", "sad", "--version", "0.1.1", "-w", str(ws), "--set", "release.max_rows_per_file=0", cwd=REPO, check=False)
    assert proc.returncode == 2 and "release.max_rows_per_file" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_input_is_reported_without_traceback(tmp_path):
    bad = tmp_path / "dump.jsonl.bz2"
    bad.write_bytes(b"BZh91AY&SY not really")
    proc = cf("build", "sad", "--input", str(bad), "-w", str(tmp_path / "ws"), cwd=REPO, check=False)
    assert proc.returncode == 2
    assert str(bad) in proc.stderr and "unsupported compression 'bz2'" in proc.stderr and "Traceback" not in proc.stderr
    proc = cf("build", "sad", "--input", str(tmp_path), "-w", str(tmp_path / "ws"), "--set", "sad.rules.min_wordz=3", cwd=REPO, check=False)
    assert proc.returncode == 2 and "unknown setting 'sad.rules.min_wordz'" in proc.stderr


def test_validate_names_the_rows_of_injected_faults(built, tmp_path):
    import shutil

    import polars as pl

    ws = tmp_path / "ws"
    shutil.copytree(built, ws)
    part = sorted((ws / "sad/stages/assemble/utterances").glob("p*/*.parquet"))[0]
    utt = pl.read_parquet(part)
    victim, short = utt["utterance_id"][0], utt["utterance_id"][1]
    utt = utt.with_columns(
        pl.when(pl.col("utterance_id") == victim).then(5).otherwise(pl.col("stance")).alias("stance"),
        pl.when(pl.col("utterance_id") == short).then(pl.lit("only four words here")).otherwise(pl.col("text")).alias("text"),
    )
    utt.write_parquet(part)
    proc = cf("validate", "sad", "-w", str(ws), cwd=REPO, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    stance_line = next(line for line in lines if "utterances.stance.in_set" in line)
    assert stance_line.strip().startswith("FAIL") and victim in proc.stdout
    words_line = next(line for line in lines if "min_words" in line)
    assert words_line.strip().startswith("FAIL") and short in proc.stdout
    assert "VERDICT: FAIL" in proc.stdout
    proc = cf("release", "sad", "--version", "9.9.9", "-w", str(ws), cwd=REPO, check=False)
    assert proc.returncode == 2 and "validation of the current SAD candidate failed" in proc.stderr
