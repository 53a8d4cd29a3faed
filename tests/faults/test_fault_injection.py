"""Crash tests, CI sample: SIGKILL each command at a few points, rerun, compare with an uninterrupted run.

The full sweep (>= 20 points per command) is ``bench/fault_sweep.py``. Full disk and read-only
folders are simulated through the same hook (``CORPUSFORGE_FAULT_AT=write:<n>:enospc``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.faults import harness
from tests.faults.harness import REPO, build_sad, corpusforge, release_digest, stages_digest

# points per command in CI: spread over step boundaries and writes (deterministic)
SAMPLE = {"build sad": 3, "validate sad": 2, "release sad": 3, "build relaionet": 3, "build facts": 2, "build polyrefuse": 2}


def test_hooks_do_nothing_unless_asked():
    code = "from pipelines.core import faults; faults.fault_point('x'); faults.fault_write('y'); print(faults.ACTIVE)"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUSFORGE_FAULT")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_point_reached_again_has_a_numbered_name_and_can_be_killed_there(tmp_path):
    code = "from pipelines.core import faults\nfor i in range(3):\n    print(i, flush=True)\n    faults.fault_point('chunk')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORPUSFORGE_FAULT")}
    log = tmp_path / "points.txt"
    listed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "CORPUSFORGE_FAULT_LIST": str(log)}, capture_output=True, text=True)
    assert listed.returncode == 0 and [line.split("\t")[0] for line in log.read_text().splitlines()] == ["chunk", "chunk#2", "chunk#3"]
    killed = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "CORPUSFORGE_FAULT_AT": "chunk#2"}, capture_output=True, text=True)
    assert harness.killed(killed) and killed.stdout.split() == ["0", "1"]


def test_choose_points_is_deterministic_and_mixes_boundaries_and_writes():
    points = [f"executor.task.before:s:{i}" for i in range(10)] + [f"write:{i}" for i in range(1, 30)]
    a, b = harness.choose_points(points, 6, seed=1), harness.choose_points(points, 6, seed=1)
    assert a == b and len(a) == 6
    assert any(p.startswith("write:") for p in a) and any(not p.startswith("write:") for p in a)


@pytest.mark.parametrize("name", SAMPLE, ids=lambda name: name.replace(" ", "-"))
def test_killed_command_reruns_to_identical_outputs(name, tmp_path):
    (command,) = harness.dataset_commands(tmp_path / "inputs", {name})
    result = harness.sweep(command, tmp_path / "sweep", SAMPLE[name])
    assert result.points_available >= 20, result
    assert not result.failures, "\n".join(f"{t.point}: {t.detail}" for t in result.failures)


# --------------------------------------------------------------------------- full disk, read-only


def _no_traceback(r: subprocess.CompletedProcess) -> str:
    text = r.stdout + r.stderr
    assert "Traceback" not in text, text
    return " ".join(text.split())


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A workspace with a complete SAD build, its verdict and release 0.1.0."""
    ws = tmp_path_factory.mktemp("released") / "ws"
    build_sad(ws)
    harness._run_ok(["release", "sad", "--version", "0.1.0"], ws)
    return ws


@pytest.mark.parametrize("action, words", [("enospc", "disk full"), ("erofs", "read-only file system")])
def test_failing_write_in_a_rebuild_names_the_path_and_keeps_the_earlier_stages(released, action, words):
    before = stages_digest(released, "sad")
    r = corpusforge(["build", "sad", "--input", str(harness.SAD_INPUT), "-w", str(released), "--set", "sad.rules.min_words=3",
                     *harness.COMMON], cwd=released.parent, env={"CORPUSFORGE_FAULT_AT": f"write:2:{action}"})
    text = _no_traceback(r)
    assert r.returncode == 2 and f"{words} while writing {released}" in text and "run the same command again" in text, text
    assert stages_digest(released, "sad") == before


def test_full_disk_during_a_release_names_the_path_and_keeps_the_earlier_release(released):
    before = release_digest(released, "sad")
    r = corpusforge(["release", "sad", "--version", "0.2.0", "-w", str(released), *harness.COMMON], cwd=released.parent,
                    env={"CORPUSFORGE_FAULT_AT": "write:3:enospc"})
    text = _no_traceback(r)
    assert r.returncode == 2 and "disk full while writing" in text and "free space" in text, text
    assert release_digest(released, "sad") == before  # 0.1.0 intact, no 0.2.0, no temporary folder left


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_release_into_a_read_only_folder_is_refused_clearly(released):
    folder = released / "releases" / "sad"
    before = release_digest(released, "sad")
    folder.chmod(0o555)
    try:
        r = corpusforge(["release", "sad", "--version", "0.3.0", "-w", str(released)], cwd=released.parent)
    finally:
        folder.chmod(0o755)
    text = _no_traceback(r)
    assert r.returncode == 2 and "permission denied" in text and str(folder) in text, text
    assert release_digest(released, "sad") == before


# --------------------------------------------------------------------------- annotation (real Label Studio)


def _push_and_pull_sample(target, tmp_path, points: int = 3) -> None:
    push, push_check, pull, pull_check = harness.annotation_commands(target)
    pushed = harness.sweep(push, tmp_path / "push", points, check=push_check)
    pulled = harness.sweep(pull, tmp_path / "pull", points, check=pull_check)
    for result in (pushed, pulled):
        assert result.points_available >= 20, result
        assert not result.failures, "\n".join(f"{result.command} {t.point}: {t.detail}" for t in result.failures)
        assert any(t.point.startswith(("annotation.", "write:")) for t in result.trials)
    state = json.loads((tmp_path / "push" / "trial" / "annotation" / "sad" / target.state_name / "project.json").read_text())
    assert state


@pytest.mark.slow
def test_killed_push_and_pull_rerun_without_duplicates_or_lost_snapshots(label_studio, tmp_path):
    _push_and_pull_sample(harness.LabelStudioTarget(label_studio.url, label_studio.token), tmp_path)


@pytest.mark.slow
def test_killed_argilla_push_and_pull_rerun_without_duplicates_or_lost_snapshots(argilla, tmp_path):
    _push_and_pull_sample(harness.ArgillaTarget(argilla.url, argilla.api_key), tmp_path, points=2)
