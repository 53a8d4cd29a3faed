"""What every annotation backend provides, and the errors they raise.

A backend turns an :class:`annotation.spec.AnnotationSpec` and a routing plan into a project with
tasks on a server (``push``), and the server's annotations back into an immutable snapshot of
judgments (``pull``). The workspace side (task map, journal, snapshots) is
:class:`annotation.store.ProjectState`, shared by all backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from annotation.routing import RoutingPlan
from annotation.spec import AnnotationSpec, Answers
from annotation.store import ProjectState
from pipelines.core.errors import CorpusforgeError

Progress = Callable[[int, int], None]  # (done, total)


class BackendError(CorpusforgeError):
    """A problem talking to an annotation server; the message says what to do."""


class BackendUnavailable(BackendError):
    pass


class BackendAuthError(BackendError):
    pass


@dataclass
class PushReport:
    project_id: int
    project_url: str
    created: int = 0  # tasks created by this push
    already: int = 0  # items already on the server (skipped)
    recovered: int = 0  # tasks of an interrupted chunk found on the server and mapped
    gold: int = 0
    seconds: float = 0.0


@dataclass
class PullReport:
    snapshot: Path
    tasks: int = 0
    annotations: int = 0
    judgments: int = 0
    rejected: int = 0
    skipped: int = 0
    changes: dict[str, int] = field(default_factory=dict)  # new / updated / deleted since last pull
    deleted_tasks: list[str] = field(default_factory=list)  # item ids whose task vanished on the server
    seconds: float = 0.0
    source: str = ""  # where the annotations were read from (export API, local database, ...)


class Backend(Protocol):
    name: str

    def push(self, spec: AnnotationSpec, plan: RoutingPlan, state: ProjectState, *, chunk_size: int = ..., progress: Progress | None = ...) -> PushReport: ...

    def pull(self, spec: AnnotationSpec, state: ProjectState, *, progress: Progress | None = ...) -> PullReport: ...

    def ensure_annotators(self, names: list[str], *, simulated: bool) -> dict[str, Any]: ...

    def submit(self, spec: AnnotationSpec, state: ProjectState, item_id: str, annotator: Any, answers: Answers) -> Any: ...
