"""Crash safety: a build killed mid-step resumes to the same output; unchanged steps are skipped."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


from pipelines.sad.pipeline import build_sad, read_candidate
from pipelines.sad.settings import SadRules, SadSettings, SadSources, SadSuggester
from tests.pipelines.sad.dumps import thread, write_lines

REPO = Path(__file__).resolve().parents[3]
SETTINGS = SadSettings(sources=SadSources(partitions=6, chunk_bytes=64 * 1024))

RUNNER = """
import sys
from pathlib import Path
from pipelines.sad.pipeline import build_sad
from pipelines.sad.settings import SadSettings, SadSources
build_sad([Path(p) for p in sys.argv[2:]], SadSettings(sources=SadSources(partitions=6, chunk_bytes=64 * 1024)), Path(sys.argv[1]))
"""


def _dumps(tmp_path: Path) -> list[Path]:
    paths = []
    for f in range(3):
        rows = []
        for i in range(4000):
            rows += thread(f"f{f}n{i}")
        paths.append(write_lines(tmp_path / f"part{f}.jsonl.zst", rows, compression="zst"))
    return paths


def _digest(stages: Path) -> dict[str, str]:
    out = {}
    for step in ("ingest", "build_dialogues", "suggest_strategies", "assemble"):
        for f in sorted((stages / step).rglob("*.parquet")):
            out[str(f.relative_to(stages))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _kill_when(stages: Path, pattern: str, inputs: list[Path]) -> bool:
    """Start a build, SIGKILL it as soon as a file matching ``pattern`` appears; True if killed mid-run."""
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(stages), *map(str, inputs)], cwd=REPO)
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if list(stages.glob(pattern)):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("build did not reach the kill point in time")


def test_killed_build_resumes_to_identical_output(tmp_path):
    inputs = _dumps(tmp_path)
    clean = tmp_path / "clean"
    build_sad(inputs, SETTINGS, clean)

    crashed = tmp_path / "crashed"
    # kill inside the source step (after the first file) and inside a map step (after a partition)
    assert _kill_when(crashed, ".tmp/ingest-*/_progress/u00000.json", inputs)
    assert not (crashed / "ingest" / "_SUCCESS").exists()
    assert _kill_when(crashed, ".tmp/build_dialogues-*/_progress/p00001.json", inputs)
    assert (crashed / "ingest" / "_SUCCESS").exists() and not (crashed / "build_dialogues").exists()
    result = build_sad(inputs, SETTINGS, crashed)
    assert result.steps["ingest"].skipped
    assert result.steps["build_dialogues"].stats["tasks_resumed"] >= 2
    assert _digest(crashed) == _digest(clean)
    for name, frame in read_candidate(clean).items():
        assert read_candidate(crashed)[name].equals(frame), name
    assert not list((crashed / ".tmp").glob("*"))


def test_rerun_skips_unchanged_steps_and_redoes_only_affected_ones(tmp_path):
    inputs = _dumps(tmp_path)[:1]
    stages = tmp_path / "st"
    first = build_sad(inputs, SETTINGS, stages)
    assert not any(o.skipped for o in first.steps.values())
    again = build_sad(inputs, SETTINGS, stages)
    assert all(o.skipped for o in again.steps.values())
    # a suggester setting touches only the suggestions and what follows
    changed = SETTINGS.model_copy(update={"suggester": SadSuggester(threshold=0.7)})
    third = build_sad(inputs, changed, stages)
    assert [n for n, o in third.steps.items() if not o.skipped] == ["suggest_strategies", "assemble"]
    # a construction rule re-walks the dialogues but does not re-read the dumps
    stricter = changed.model_copy(update={"rules": SadRules(min_words=12)})
    fourth = build_sad(inputs, stricter, stages)
    assert [n for n, o in fourth.steps.items() if not o.skipped] == ["build_dialogues", "suggest_strategies", "assemble"]
    # changed input bytes re-read everything
    rows = thread("extra")
    write_lines(inputs[0], rows, compression="zst")
    fifth = build_sad(inputs, stricter, stages)
    assert not any(o.skipped for o in fifth.steps.values())
    stats = json.loads((stages / "ingest" / "_stats.json").read_text())
    assert stats["rows_out"]["nodes"] == 3


def test_ctrl_c_stops_cleanly_and_the_rerun_completes(tmp_path):
    """SIGINT (Ctrl-C) during `corpusforge build sad`: exit 130 with a resume hint, no partial stage."""
    inputs = _dumps(tmp_path)
    clean = tmp_path / "clean"
    build_sad(inputs, SETTINGS, clean)
    ws = tmp_path / "ws"
    args = [sys.executable, "-m", "corpusforge", "build", "sad", "-w", str(ws),
            "--set", "sad.sources.partitions=6", "--set", "sad.sources.chunk_bytes=65536"]
    for p in inputs:
        args += ["--input", str(p)]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stages = ws / "sad" / "stages"
    deadline = time.time() + 120
    while not list(stages.glob(".tmp/ingest-*/_progress/u00000.json")):
        assert proc.poll() is None and time.time() < deadline, "build ended before the interrupt point"
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "Interrupted" in err and "run the same command again to resume" in err and "Traceback" not in err
    assert not (stages / "ingest" / "_SUCCESS").exists()
    rerun = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert _digest(stages) == _digest(clean)
