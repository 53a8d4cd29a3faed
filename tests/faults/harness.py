"""Crash-test harness: kill a ``corpusforge`` command at chosen points, rerun it, compare outputs.

A :class:`Command` is a command line plus how to prepare its workspace and how to summarise what
it wrote (:meth:`Command.digest`, by content: stage rows as sorted row hashes, release checksums,
snapshot judgments). :func:`sweep` runs it once uninterrupted while recording its kill points
(``CORPUSFORGE_FAULT_LIST``, see :mod:`pipelines.core.faults`), then for each chosen point copies
the prepared workspace, runs the command with ``CORPUSFORGE_FAULT_AT=<point>`` (it must die by
SIGKILL), reruns it without the fault and compares the digest with the uninterrupted one.

Used by ``tests/faults/test_fault_injection.py`` (a few points per command) and
``bench/fault_sweep.py`` (every command, >= 20 points each).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

REPO = Path(__file__).resolve().parents[2]
SAD_INPUT = REPO / "pipelines" / "sad" / "sample" / "reddit"
RELAIONET_INPUT = REPO / "pipelines" / "relaionet" / "sample" / "images"
# one worker: the kill points and write numbers of a run are then those of one process
COMMON = ("--set", "executor.workers=1")


def corpusforge(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m corpusforge <args>`` in a subprocess (a kill must take a whole process)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    for var in ("CORPUSFORGE_FAULT_AT", "CORPUSFORGE_FAULT_LIST"):
        if env is None or var not in env:
            full_env.pop(var, None)
    return subprocess.run([sys.executable, "-m", "corpusforge", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def killed(result: subprocess.CompletedProcess) -> bool:
    return result.returncode == -signal.SIGKILL


# --------------------------------------------------------------------------- digests by content


def _frame_digest(files: list[Path]) -> str:
    import polars as pl

    if not files:
        return "empty"
    df = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    df = df.select(sorted(df.columns))
    hashes = sorted(df.hash_rows(seed=0).to_list()) if df.height else []
    return f"{df.height}:{hashlib.sha256(json.dumps([df.columns, hashes]).encode()).hexdigest()[:16]}"


def _json_without(path: Path, *keys: str) -> Any:
    obj = json.loads(path.read_text())
    for k in keys:
        obj.pop(k, None)
    return obj


def stages_digest(ws: Path, dataset: str) -> dict[str, Any]:
    """Per step: fingerprint, stats (without timings) and each output's rows by content."""
    root = ws / dataset / "stages"
    out: dict[str, Any] = {}
    for step in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        rec: dict[str, Any] = {
            "success": (step / "_SUCCESS").exists(),
            "fingerprint": json.loads((step / "_fingerprint.json").read_text())["fingerprint"],
            "stats": _json_without(step / "_stats.json", "seconds", "tasks_resumed"),
            "rejects": _frame_digest(sorted((step / "_rejects").glob("*.parquet"))),
        }
        for output in sorted(p for p in step.iterdir() if p.is_dir() and not p.name.startswith("_")):
            rec[output.name] = _frame_digest(sorted(output.glob("p*/*.parquet")))
        out[step.name] = rec
    if (root / "_build.json").exists():
        out["_build.json"] = json.loads((root / "_build.json").read_text())
    return out


def validation_digest(ws: Path, dataset: str) -> dict[str, Any]:
    """The newest verdict and its checks; every run with a verdict must be complete and readable."""
    runs = sorted(p for p in (ws / dataset / "validation").iterdir() if (p / "candidate.json").exists())
    for run in runs:  # a verdict is written last: its run's files must all be there
        json.loads((run / "results.json").read_text())
        json.loads((run / "summary.json").read_text())
        assert (run / "report.html").read_text().rstrip().endswith("</html>"), run
    newest = runs[-1]
    summary = json.loads((newest / "summary.json").read_text())
    return {
        "verdict": _json_without(newest / "candidate.json", "run"),
        "checks": [(c["name"], c["success"], c["unexpected_count"]) for c in summary["checks"]],
    }


def release_digest(ws: Path, dataset: str) -> dict[str, Any]:
    """Each release: verified, checksums of its files (the manifest's time stamp aside)."""
    from releases.verify import verify_release

    out: dict[str, Any] = {}
    root = ws / "releases" / dataset
    for rel in sorted(p for p in root.iterdir() if not p.name.startswith(".")) if root.exists() else []:
        report = verify_release(rel)
        sums = dict(reversed(line.split("  ", 1)) for line in (rel / "checksums.sha256").read_text().splitlines() if line.strip())
        sums.pop("manifest.json", None)
        out[rel.name] = {"ok": bool(getattr(report, "ok", True)), "checksums": sums,
                         "manifest": _json_without(rel / "manifest.json", "created_at")}
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".")] if root.exists() else []
    out["_temporary_left"] = leftovers
    return out


def snapshot_digest(snapshot: Path) -> dict[str, Any]:
    import polars as pl

    j = pl.read_parquet(snapshot / "judgments.parquet")
    return {
        "judgments": j.height,
        "annotation_ids_unique": j["annotation_id"].n_unique() == j.height,
        "rows": _frame_digest([snapshot / "judgments.parquet"]),
        "tasks": json.loads((snapshot / "summary.json").read_text())["tasks"],
    }


def files_sha(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- commands


@dataclass
class Command:
    """One command under test.

    ``prepare(ws)`` makes the workspace the command starts from (copied for every trial);
    ``digest(ws)`` summarises its outputs by content; ``before_trial()`` resets outside state
    (the annotation server); ``env`` is added to the command's environment.
    """

    name: str
    args: list[str]
    digest: Callable[[Path], Any]
    prepare: Callable[[Path], None] = lambda ws: None
    before_trial: Callable[[], None] = lambda: None
    env: dict[str, str] = field(default_factory=dict)

    def argv(self, ws: Path) -> list[str]:
        return [*self.args, "-w", str(ws), *COMMON]


@dataclass
class Trial:
    point: str
    ok: bool
    detail: str = ""


@dataclass
class SweepResult:
    command: str
    points_available: int
    trials: list[Trial]

    @property
    def identical(self) -> int:
        return sum(t.ok for t in self.trials)

    @property
    def failures(self) -> list[Trial]:
        return [t for t in self.trials if not t.ok]


def list_points(cmd: Command, base: Path, work: Path) -> tuple[list[str], Any]:
    """Run ``cmd`` uninterrupted on a copy of ``base``, recording its kill points; (points, digest)."""
    ws = work / "reference"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(base, ws, symlinks=True)
    log = work / "points.txt"
    log.unlink(missing_ok=True)
    cmd.before_trial()
    result = corpusforge(cmd.argv(ws), cwd=work, env={**cmd.env, "CORPUSFORGE_FAULT_LIST": str(log)})
    if result.returncode != 0:
        raise RuntimeError(f"{cmd.name}: the uninterrupted run failed:\n{result.stdout}\n{result.stderr}")
    points = [line.split("\t", 1)[0] for line in log.read_text().splitlines()] if log.exists() else []
    return list(dict.fromkeys(points)), cmd.digest(ws)


def choose_points(points: list[str], n: int, seed: int = 0) -> list[str]:
    """``n`` points, half step boundaries and half writes where both exist: evenly spread over the
    run (first, last and between), the rest drawn at random with ``seed`` (deterministic)."""
    if n >= len(points):
        return list(points)
    writes = [p for p in points if p.startswith("write:")]
    bounds = [p for p in points if not p.startswith("write:")]
    n_writes = min(len(writes), max(n - len(bounds), n // 2))
    n_bounds = min(len(bounds), n - n_writes)
    n_writes = min(len(writes), n - n_bounds)
    rng = random.Random(seed)

    def spread(pool: list[str], k: int) -> list[str]:
        if k <= 0:
            return []
        even = max(1, k // 2)
        step = (len(pool) - 1) / max(1, even - 1) if even > 1 else 0
        picked = list(dict.fromkeys(pool[round(i * step)] for i in range(even)))
        rest = [p for p in pool if p not in picked]
        picked += rng.sample(rest, min(len(rest), k - len(picked)))
        return picked

    chosen = set(spread(bounds, n_bounds) + spread(writes, n_writes))
    return [p for p in points if p in chosen]  # in run order


def run_trial(cmd: Command, base: Path, work: Path, point: str, reference: Any,
              check: Callable[[Path], str] | None = None) -> Trial:
    """Kill ``cmd`` at ``point``, rerun it, compare with ``reference``; ``check(ws)`` may add a problem."""
    ws = work / "trial"
    shutil.rmtree(ws, ignore_errors=True)
    shutil.copytree(base, ws, symlinks=True)
    cmd.before_trial()
    first = corpusforge(cmd.argv(ws), cwd=work, env={**cmd.env, "CORPUSFORGE_FAULT_AT": point})
    if not killed(first):
        return Trial(point, False, f"not killed (rc {first.returncode}): {(first.stdout + first.stderr)[-400:]}")
    rerun = corpusforge(cmd.argv(ws), cwd=work, env=cmd.env)
    if rerun.returncode != 0:
        return Trial(point, False, f"rerun failed (rc {rerun.returncode}): {(rerun.stdout + rerun.stderr)[-600:]}")
    try:
        got = cmd.digest(ws)
    except Exception as exc:  # noqa: BLE001 - a corrupted output is a finding, not a harness error
        return Trial(point, False, f"outputs unreadable after the rerun: {type(exc).__name__}: {exc}")
    if got != reference:
        return Trial(point, False, "outputs differ: " + _first_difference(reference, got))
    problem = check(ws) if check else ""
    return Trial(point, not problem, problem)


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{path}/{k}")
    return f"{path or '/'}: expected {str(a)[:200]} got {str(b)[:200]}"


def sweep(cmd: Command, work: Path, n_points: int, *, seed: int = 0, check: Callable[[Path], str] | None = None,
          points: list[str] | None = None, log: Callable[[str], None] | None = None) -> SweepResult:
    """Prepare ``cmd``'s workspace, list its kill points, and kill/rerun/compare at ``n_points`` of them."""
    work.mkdir(parents=True, exist_ok=True)
    base = work / "base"
    if not base.exists():
        base.mkdir()
        cmd.prepare(base)
    available, reference = list_points(cmd, base, work)
    chosen = points if points is not None else choose_points(available, n_points, seed)
    trials = []
    for p in chosen:
        trial = run_trial(cmd, base, work, p, reference, check)
        if log:
            log(f"{cmd.name:<18} {p:<55} {'ok' if trial.ok else 'FAIL ' + trial.detail}")
        trials.append(trial)
    return SweepResult(cmd.name, len(available), trials)


# --------------------------------------------------------------------------- the commands of the issue


def _run_ok(args: list[str], ws: Path, env: dict[str, str] | None = None) -> str:
    r = corpusforge([*args, "-w", str(ws), *COMMON], cwd=ws.parent, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"corpusforge {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def build_sad(ws: Path) -> None:
    _run_ok(["build", "sad", "--input", str(SAD_INPUT)], ws)


@dataclass(frozen=True)
class Dataset:
    """How to build one dataset from bundled or generated inputs, for its build, validate and release sweeps.

    ``build`` follows ``build <name>``; ``settings`` go to every command of the dataset;
    ``release_shard_rows`` (``release.max_rows_per_file``) shards the release's splits into several
    files, so that its release has >= 20 kill points on the small sample (a real setting, used
    for big splits); ``prepare_inputs(folder)`` writes generated inputs once.
    """

    name: str
    build: tuple[str, ...]
    settings: tuple[str, ...] = ()
    version: str = "0.1.0"
    release_shard_rows: int = 500_000
    prepare_inputs: Callable[[Path], None] | None = None

    def run_build(self, ws: Path) -> None:
        _run_ok(["build", self.name, *self.build, *self.settings], ws)

    def run_validate(self, ws: Path) -> None:
        self.run_build(ws)
        _run_ok(["validate", self.name, *self.settings], ws)

    def commands(self) -> list[Command]:
        stages = lambda ws: stages_digest(ws, self.name)  # noqa: E731
        shard = ("--set", f"release.max_rows_per_file={self.release_shard_rows}")
        return [
            Command(f"build {self.name}", ["build", self.name, *self.build, *self.settings], stages),
            Command(f"validate {self.name}", ["validate", self.name, *self.settings],
                    lambda ws: {"stages": stages(ws), "validation": validation_digest(ws, self.name)}, prepare=self.run_build),
            Command(f"release {self.name}", ["release", self.name, "--version", self.version, *self.settings, *shard],
                    lambda ws: {"stages": stages(ws), "release": release_digest(ws, self.name)}, prepare=self.run_validate),
        ]


def datasets(inputs: Path) -> list[Dataset]:
    """The four datasets on their samples; generated inputs (reLAIONet corrections, the facts corpus) go to ``inputs``."""
    shared = REPO.parent / "shared" / "data"
    corrections = inputs / "relaionet-corrections.parquet"
    corpus = inputs / "facts-corpus"

    def relaionet_inputs(folder: Path) -> None:
        from tests.corpusforge.test_cli_relaionet import corrections_from_expected

        folder.mkdir(parents=True, exist_ok=True)
        if not corrections.exists():
            corrections_from_expected(corrections)

    def facts_inputs(folder: Path) -> None:
        from tests.pipelines.facts.test_pipeline import write_corpus

        if not corpus.exists():
            write_corpus(corpus)

    no_model = ("--set", 'relaionet.similarity.encoder="none"', "--set", 'relaionet.ocr.backend="none"')
    return [
        Dataset("sad", ("--input", str(SAD_INPUT)), release_shard_rows=10),
        Dataset("polyrefuse", ("--sources", str(shared / "polyrefuse-sources"), "--backend", "published",
                               "--translations", str(shared / "polyrefuse-sample")),
                ("--languages", "de,en"), release_shard_rows=400),
        Dataset("relaionet", ("--input", str(RELAIONET_INPUT), "--corrections", str(corrections)), no_model,
                release_shard_rows=1, prepare_inputs=relaionet_inputs),
        Dataset("facts", ("--facts", str(shared / "klar"), "--corpus", str(corpus)),
                ("--set", 'facts.corpus.step_field="metadata.step"', "--set", 'facts.corpus_name="generated test corpus"',
                 "--set", "facts.checkpoints=[100, 300]"), version="1.0.0", release_shard_rows=400, prepare_inputs=facts_inputs),
    ]


def dataset_commands(inputs: Path, names: set[str] | None = None) -> list[Command]:
    """build, validate and release of every dataset (or of the commands in ``names``); inputs prepared in ``inputs``."""
    commands = []
    for ds in datasets(inputs):
        chosen = [c for c in ds.commands() if names is None or c.name in names]
        if chosen and ds.prepare_inputs is not None:
            ds.prepare_inputs(inputs)
        commands += chosen
    return commands


@dataclass
class _Target:
    """A running annotation server for the push and pull sweeps: the settings and secret to reach it."""

    url: str
    secret: str
    backend: ClassVar[str]
    state_name: ClassVar[str]  # the workspace's folder under annotation/<dataset>/
    secret_var: ClassVar[str]
    tuning: ClassVar[tuple[str, ...]]  # settings of annotation.<backend> for the sweeps

    @property
    def env(self) -> dict[str, str]:
        return {self.secret_var: self.secret}

    @property
    def settings(self) -> list[str]:
        section = f"annotation.{self.backend}"
        values = [f'annotation.backend="{self.backend}"', f"{section}.url={self.url}", *(f"{section}.{t}" for t in self.tuning)]
        return [arg for value in values for arg in ("--set", value)]


@dataclass
class LabelStudioTarget(_Target):
    backend = "label_studio"
    state_name = "label-studio"
    secret_var = "CORPUSFORGE_LABEL_STUDIO_TOKEN"
    # 18 items pushed 3 a request and exported 1 a request: several chunks and batches to kill in
    tuning = ("chunk_size=3", "export_batch=1")

    def client(self):
        from label_studio_sdk import LabelStudio

        return LabelStudio(base_url=self.url, api_key=self.secret, max_retries=0)

    def delete_projects(self) -> None:
        client = self.client()
        for project in client.projects.list():
            client.projects.delete(project.id)

    def server_tasks(self, project: dict[str, Any]) -> list[tuple[str, int]]:
        """(item id, task id) of every task of the pushed project."""
        from annotation.backends.labelstudio.config import ITEM_KEY

        return [((t.data or {}).get(ITEM_KEY), t.id) for t in self.client().tasks.list(project=project["project_id"])]


@dataclass
class ArgillaTarget(_Target):
    """Records stand for tasks."""

    backend = "argilla"
    state_name = "argilla"
    secret_var = "CORPUSFORGE_ARGILLA_API_KEY"
    # 18 items created 3 a bulk request and read 1 a page: several chunks and pages to kill in
    tuning = ("chunk_size=3", "page_size=1")

    def _http(self):
        import httpx

        return httpx.Client(base_url=self.url, headers={"X-Argilla-Api-Key": self.secret}, timeout=60)

    def delete_projects(self) -> None:
        with self._http() as http:
            for dataset in http.get("/api/v1/me/datasets").raise_for_status().json()["items"]:
                http.delete(f"/api/v1/datasets/{dataset['id']}").raise_for_status()

    def server_tasks(self, project: dict[str, Any]) -> list[tuple[str, int]]:
        import uuid

        out, offset = [], 0
        with self._http() as http:
            while True:
                body = http.get(f"/api/v1/datasets/{project['dataset_id']}/records", params={"offset": offset, "limit": 1000}).raise_for_status().json()
                out += [(r["external_id"], uuid.UUID(r["id"]).int) for r in body["items"]]
                offset += len(body["items"])
                if not body["items"] or offset >= body["total"]:
                    return out


def annotation_commands(target: LabelStudioTarget | ArgillaTarget) -> tuple[Command, Callable[[Path], str], Command, Callable[[Path], str]]:
    """(push, its server check, pull, its snapshot check) for SAD against a running annotation server.

    push: the server must hold exactly one task per item, and the workspace's task map the same ids.
    pull: the newest snapshot has every judgment once; the snapshot made before the trial is intact.
    """
    env = target.env
    s = [*target.settings, "--set", "annotation.sad.annotators=['ann1','ann2','ann3']"]
    state = lambda ws: ws / "annotation" / "sad" / target.state_name  # noqa: E731
    suffix = "" if target.backend == "label_studio" else f" ({target.backend})"

    def push_digest(ws: Path) -> Any:
        rows = [json.loads(line) for line in (state(ws) / "tasks.jsonl").read_text().splitlines()]
        return {"stages": stages_digest(ws, "sad"), "items": sorted(r["item_id"] for r in rows),
                "pending": (state(ws) / "pending.json").exists()}

    def push_check(ws: Path) -> str:
        on_server = target.server_tasks(json.loads((state(ws) / "project.json").read_text()))
        items = [i for i, _ in on_server]
        dup = sorted({i for i in items if items.count(i) > 1})
        mapped = {json.loads(line)["item_id"]: json.loads(line)["task_id"] for line in (state(ws) / "tasks.jsonl").read_text().splitlines()}
        if dup:
            return f"duplicate tasks on the server for {dup[:5]}"
        if mapped != dict(on_server):
            return f"task map ({len(mapped)}) and server ({len(on_server)}) disagree"
        return ""

    push = Command(f"annotate push sad{suffix}", ["annotate", "push", "sad", "--sample-size", "18", *s], push_digest,
                   prepare=build_sad, before_trial=target.delete_projects, env=env)

    def pull_prepare(ws: Path) -> None:
        build_sad(ws)
        target.delete_projects()
        _run_ok(["annotate", "push", "sad", "--sample-size", "18", *s], ws, env)
        _run_ok(["annotate", "simulate", "sad", "--simulated", "--noise", "0.2", *s], ws, env)
        _run_ok(["annotate", "pull", "sad", *s], ws, env)  # the earlier snapshot the trials must keep intact

    earlier: dict[str, Any] = {}

    def pull_digest(ws: Path) -> Any:
        snaps = sorted(p for p in (state(ws) / "pulls").iterdir() if not p.name.startswith(".") and (p / "summary.json").exists())
        if not earlier:
            earlier.update(name=snaps[0].name, files=files_sha(snaps[0]))
        return {"latest": snapshot_digest(snaps[-1]), "first": snaps[0].name}

    def pull_check(ws: Path) -> str:
        first = state(ws) / "pulls" / earlier["name"]
        if files_sha(first) != earlier["files"]:
            return f"the earlier snapshot {first.name} changed"
        return ""

    pull = Command(f"annotate pull sad{suffix}", ["annotate", "pull", "sad", *s], pull_digest, prepare=pull_prepare, env=env)
    return push, push_check, pull, pull_check
