"""Ray executor: the same steps and task functions as the local executor, run as Ray tasks.

Each task of a step (a source step's input file, a map step's partition) becomes one Ray task
running :func:`~pipelines.core.executor.run_source_unit` or
:func:`~pipelines.core.executor.run_map_partition`, exactly as a local worker would. Fingerprints,
resume and the stage commit stay in the driver (:class:`~pipelines.core.executor.Executor`).

**Shared filesystem.** Tasks read their inputs and write their stage files themselves, directly
into ``<workspace>/<dataset>/stages/``: the workspace and the input files must be on a
filesystem that every Ray node mounts at the same path (NFS, a cluster filesystem; one machine
is trivially fine). Paths are made absolute before they are shipped.

**Resources.** A map step's ``resources`` (``num_cpus``, ``num_gpus``, ``memory`` or custom
resource names) become the task's Ray options. A step that no node of the cluster could run
is refused with a :class:`~pipelines.core.errors.CorpusforgeError` before anything is submitted,
instead of waiting forever.

Ray is imported only when this executor is built; without it, the error names the extra to
install (``pip install 'corpusforge[ray]'``).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from pipelines.core.errors import CorpusforgeError
from pipelines.core.executor import Executor, StepOutcome
from pipelines.core.progress import NO_PROGRESS, Progress
from pipelines.core.step import Pipeline, SourceStep, Step
from pipelines.core.workerenv import environ, worker_env

# Step resources that are Ray task options of their own (with the cluster's name for each);
# any other name is a custom resource, passed in ``resources=``.
_TASK_OPTIONS = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
# How long cancelled tasks get to stop, so that none still writes into the stage afterwards.
CANCEL_GRACE_S = 30.0
# The environment of every worker of a Ray this executor starts or joins (see workerenv): a one-CPU
# task's polars uses one thread. Tasks that ask for more CPUs get their own runtime_env.
WORKER_ENV = worker_env(1)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise CorpusforgeError(
            "the Ray executor needs Ray, which is not installed: pip install 'corpusforge[ray]' "
            "(or set executor.kind = \"local\")"
        ) from exc
    return ray


class RayExecutor(Executor):
    """Runs every task of a step as a Ray task, on a local Ray or a running cluster.

    ``address``: a running cluster (``auto``, ``ray://head:10001``, ``head:6379``); ``None``
    starts a local Ray with ``num_cpus`` CPUs (``None``: all cores). If Ray is already
    initialised in this process, that instance is used as it is. Ray starts (or connects) with
    the first task, so a build whose steps are all up to date does not pay for it; :meth:`close`
    shuts down only a Ray this executor started (for a cluster: it disconnects).

    The workspace and the inputs must be on a filesystem every Ray node sees (see the module
    docstring). A failing task's own exception (same type and message) reaches the caller, and
    the step's other tasks are cancelled; finished tasks keep their progress records, so a
    rerun resumes.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self._ray = _import_ray()
        self.address = address
        self.num_cpus = num_cpus
        self._started = False

    def run(self, pipeline: Pipeline, stages_root: Path, progress: Progress = NO_PROGRESS) -> dict[str, StepOutcome]:
        # Tasks may run on other machines, in another working directory: absolute paths only.
        return super().run(pipeline, Path(stages_root).resolve(), progress)

    def map_tasks(self, fn: Callable[..., str], calls: Sequence[tuple], on_done: Callable[[str], None]) -> None:
        if not calls:
            return
        ray = self.connect()
        step: Step = calls[0][0]  # every task function takes its step first
        options = _task_options(step)
        self._check_feasible(step.name, options)
        remote = ray.remote(fn).options(name=step.name, **options)
        pending = [remote.remote(*args) for args in _share_common_args(ray, calls)]
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        key = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        original = _original_error(ray, exc)
                        if original is exc:
                            raise
                        raise original from exc
                    on_done(key)
        finally:
            if pending:  # a task failed, or the driver was interrupted
                for ref in pending:
                    ray.cancel(ref)
                ray.wait(pending, num_returns=len(pending), timeout=CANCEL_GRACE_S)

    def _run_source(self, step: SourceStep, work: Path, todo: list[int], progress: Progress) -> None:
        # One Ray task per input file; the progress bar advances by a file's size when it is done.
        step = dataclasses.replace(
            step, units=tuple(dataclasses.replace(u, path=str(Path(u.path).resolve())) for u in step.units)
        )
        self._map_units(step, work, todo, progress)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def connect(self) -> Any:
        """Start the local Ray or connect to the cluster now (otherwise the first task does); returns ray."""
        ray = self._ray
        if ray.is_initialized():
            return ray
        # Worker output stays in Ray's log files; the driver shows progress bars and errors only.
        quiet = {"log_to_driver": False, "logging_level": logging.ERROR}
        try:
            if self.address:
                ray.init(address=self.address, runtime_env={"env_vars": WORKER_ENV}, **quiet)
            else:
                # A local Ray's workers inherit the environment it starts with, so one-CPU tasks run
                # in the workers Ray starts ahead; a runtime_env (job or task) would make Ray start
                # fresh workers for them, about a second each, measured (docs/benchmarks.md).
                with environ(WORKER_ENV):
                    ray.init(num_cpus=self.num_cpus, include_dashboard=False, **quiet)
        except (ConnectionError, ValueError) as exc:
            where = f"the Ray cluster at {self.address!r}" if self.address else "a local Ray"
            raise CorpusforgeError(
                f"cannot start or reach {where}: {exc}. For a cluster, run `ray start --head` on its head "
                "node and set executor.ray_address (auto on a node of the cluster)."
            ) from exc
        self._started = True
        return ray

    def _check_feasible(self, step_name: str, options: dict[str, Any]) -> None:
        """Refuse a step whose task fits on no node (Ray would keep it pending forever)."""
        wanted = {
            "CPU": options.get("num_cpus", 1),
            "GPU": options.get("num_gpus", 0),
            "memory": options.get("memory", 0),
            **options.get("resources", {}),
        }
        wanted = {name: amount for name, amount in wanted.items() if amount > 0}
        nodes = [node["Resources"] for node in self._ray.nodes() if node.get("Alive")]
        if any(all(have.get(name, 0) >= amount for name, amount in wanted.items()) for have in nodes):
            return
        short = sorted({name for name, amount in wanted.items() if not any(have.get(name, 0) >= amount for have in nodes)})
        cluster = {
            name: amount for name, amount in self._ray.cluster_resources().items()
            if not name.startswith("node:") and name != "object_store_memory"
        }
        raise CorpusforgeError(
            f"step {step_name!r} needs {_describe(wanted)} per task, but no node of the Ray cluster has "
            f"{', '.join(repr(n) for n in short) or 'all of that at once'} (the cluster has {_describe(cluster)}); "
            "its tasks could never start. Add a node that has it (`ray start --num-gpus N` or "
            "`--resources '{\"NAME\": N}'`), or change the step's resources."
        )


def _task_options(step: Step) -> dict[str, Any]:
    """Ray task options from a step's ``resources`` (source steps have none: one CPU a task)."""
    options: dict[str, Any] = {}
    custom: dict[str, float] = {}
    for name, amount in getattr(step, "resources", ()):
        if name in _TASK_OPTIONS:
            options[name] = int(amount) if name == "memory" else amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    # Like the local executor's workers, a task's polars uses as many threads as it has CPUs
    # (set before the worker imports polars; Ray does the same with OMP_NUM_THREADS). One CPU is
    # what every worker has already (WORKER_ENV); more needs workers of their own.
    threads = max(1, int(options.get("num_cpus", 1)))
    if str(threads) != WORKER_ENV["POLARS_MAX_THREADS"]:
        options["runtime_env"] = {"env_vars": worker_env(threads)}
    return options


def _share_common_args(ray: Any, calls: Sequence[tuple]) -> list[tuple]:
    """Put arguments that every call shares (the step, the schemas) in the object store once."""
    first = calls[0]
    shared = {i: ray.put(arg) for i, arg in enumerate(first) if all(call[i] is arg for call in calls)}
    return [tuple(shared.get(i, arg) for i, arg in enumerate(call)) for call in calls]


def _original_error(ray: Any, exc: Exception) -> BaseException:
    """The exception the task raised (same type and message), where Ray can give it back."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        if isinstance(exc.cause, Exception):
            return exc.cause
        return exc.as_instanceof_cause()
    if isinstance(exc, ray.exceptions.UnserializableException):
        # The error could not be rebuilt here; its text (last line of the remote traceback) can.
        lines = [line for line in getattr(exc, "_original_stack_trace", str(exc)).splitlines() if line.strip()]
        return CorpusforgeError(f"a Ray task failed: {lines[-1].strip() if lines else exc}")
    return exc


def _describe(resources: dict[str, float]) -> str:
    parts = []
    for name, amount in sorted(resources.items()):
        shown = f"{amount / 2**30:.1f} GiB" if name == "memory" else f"{amount:g}"
        parts.append(f"{name} {shown}")
    return ", ".join(parts) or "nothing"
