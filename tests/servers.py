"""The real annotation servers, one of each for the whole test session (a plugin of tests/conftest.py).

Every test that needs a server (annotation, crash tests, security) shares these: starting one
costs 10-60 s, so none is started twice.

``label_studio_server`` (session) starts one server on a free port over a temporary data dir;
the first run of the suite on a machine also installs Label Studio's environment (~30-60 s)
and migrates its template database (~60 s); later runs reuse both and start in seconds.
``label_studio`` (per test) is the same server, minus every project the test created.

``argilla`` (session) is a real argilla-server 2.8.0 (with Redis and its rq worker) on a free
port over a temporary data dir; the first run also installs its environment (~40 s) and
migrates its template database (~25 s).
"""

from __future__ import annotations

from typing import Iterator

import pytest

from annotation.backends.argilla.server import LocalArgilla
from annotation.backends.argilla.server import ensure_environment as ensure_argilla_environment
from annotation.backends.argilla.server import ensure_template as ensure_argilla_template
from annotation.backends.labelstudio.server import LocalLabelStudio, ensure_environment, ensure_template


def _serve(server_class, ensure_env, ensure_tpl, data_dir) -> Iterator:
    """A local server in its pinned environment on a fresh copy of its template, for the session."""
    ensure_env()
    ensure_tpl()
    server = server_class(data_dir, port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def label_studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLabelStudio]:
    yield from _serve(LocalLabelStudio, ensure_environment, ensure_template, tmp_path_factory.mktemp("label-studio"))


@pytest.fixture
def label_studio(label_studio_server: LocalLabelStudio) -> Iterator[LocalLabelStudio]:
    from label_studio_sdk import LabelStudio

    if not label_studio_server.is_running():  # an earlier test stopped or killed it
        label_studio_server.start()
    client = LabelStudio(base_url=label_studio_server.url, api_key=label_studio_server.token, max_retries=0)
    before = {project.id for project in client.projects.list()}
    yield label_studio_server
    if not label_studio_server.is_running():
        label_studio_server.start()
        client = LabelStudio(base_url=label_studio_server.url, api_key=label_studio_server.token, max_retries=0)
    for project in client.projects.list():
        if project.id not in before:
            client.projects.delete(project.id)


@pytest.fixture(scope="session")
def argilla(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalArgilla]:
    yield from _serve(LocalArgilla, ensure_argilla_environment, ensure_argilla_template, tmp_path_factory.mktemp("argilla"))
