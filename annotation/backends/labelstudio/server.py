"""A local Label Studio 1.23.2: its own pinned environment, a prepared template, start and stop.

Label Studio pins a stack that conflicts with ours, so it runs from its own virtual environment,
``<repo>/.venv-labelstudio`` by default, installed from ``requirements/labelstudio.lock.txt``
(about 1 GB, 30-60 s) and rebuilt only when that lock changes. A fresh Label Studio database
costs 30-80 s of Django migrations, so ``label-studio init`` runs once into a template,
``<venv>/template-<lock hash>`` by default (it goes with the environment it was made by), and
every server's data dir starts as a copy of it: start to ``/health`` then takes a few seconds.

The template holds one admin user with random credentials, made once per checkout and shared
by every data dir copied from it. They sit in ``corpusforge-login.json`` (mode 600)::

    {"username": "admin@corpusforge.local", "password": ..., "token": <40 hex>, "secret_key": ...}

``token`` is a legacy API token (``Authorization: Token <token>``; the SDK's ``api_key``);
``secret_key`` is passed as ``SECRET_KEY`` so that browser sessions survive restarts.

A data dir is persistent (its database holds the annotations) and is never wiped::

    label_studio.sqlite3     the database; its presence means "initialised"
    corpusforge-login.json   the credentials above
    server.log               the server's output, appended at every start
    server.json              {"url", "pid", "document_root"} while a server runs: see :func:`find_running`
    media/, export/, ...     Label Studio's own files

The server listens on 127.0.0.1 only. Failures raise :class:`LabelStudioError` with what to do.
The process plumbing (environment, ports, start, stop, ``server.json``) is shared with the local
Argilla in :mod:`annotation.backends.local_server`.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

from annotation.backends import local_server as plumbing
from annotation.backends.local_server import HOST
from pipelines.core.errors import CorpusforgeError

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCK_FILE = REPO_ROOT / "requirements" / "labelstudio.lock.txt"
DEFAULT_VENV = REPO_ROOT / ".venv-labelstudio"
LABEL_STUDIO_VERSION = "1.23.2"

ADMIN_USERNAME = "admin@corpusforge.local"
DATABASE_FILE = "label_studio.sqlite3"
LOGIN_FILE = "corpusforge-login.json"
LOG_FILE = "server.log"

# Label Studio reads these plain names (besides LABEL_STUDIO_*): a user's shell must not steer it.
_INHERITED_BUT_UNSAFE = ("PORT", "HOST", "USERNAME", "PASSWORD", "USER_TOKEN", "DEBUG", "SECRET_KEY",
                         "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
_INHERITED_PREFIXES = ("LABEL_STUDIO_", "HEARTEX_", "DJANGO_")

Progress = Callable[[str], None]


class LabelStudioError(CorpusforgeError):
    """The local Label Studio could not be installed, prepared, started or stopped."""


ENVIRONMENT = plumbing.PinnedEnvironment(
    title=f"Label Studio {LABEL_STUDIO_VERSION}", package="label-studio", lock_file=LOCK_FILE,
    ready_path="bin/label-studio", installed_glob="bin/label-studio", size_note="about 1 GB that takes 30-60 s",
    error=LabelStudioError,
)


# -- the environment -------------------------------------------------------------------------


def lock_hash() -> str:
    """sha256 of ``requirements/labelstudio.lock.txt``: what the environment and template are made from."""
    return ENVIRONMENT.lock_hash()


def ensure_environment(venv_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """Return the ``label-studio`` executable, installing its environment first if needed.

    ``venv_dir`` defaults to ``<repo>/.venv-labelstudio``. The environment is built (with uv
    next to this Python, else pip) into ``<venv_dir>.tmp`` and renamed into place, so a crashed
    install never leaves a half environment; it is rebuilt only when the lock file's sha256
    differs from the stamp in it. ``progress`` receives one line before a (slow) install.
    Raises :class:`LabelStudioError` naming the failed command and its log.
    """
    return ENVIRONMENT.ensure(Path(venv_dir or DEFAULT_VENV), progress=progress) / "bin" / "label-studio"


# -- the template ----------------------------------------------------------------------------


def ensure_template(template_dir: Path | None = None, *, venv_dir: Path | None = None,
                    progress: Progress | None = None) -> Path:
    """Return a migrated Label Studio data dir to copy servers from, making it once.

    ``template_dir`` defaults to ``<venv_dir>/template-<first 12 hex of the lock hash>``, so a
    new lock gets a new template along with its new environment. It is built in a ``.tmp``
    sibling and renamed into place: random credentials (``admin@corpusforge.local``, a random
    password, a 40-hex legacy token, a SECRET_KEY) go to ``corpusforge-login.json`` (mode 600),
    ``label-studio init`` migrates the database (about 60 s), then one start checks that the
    token authenticates and removes any project init made. Raises :class:`LabelStudioError`.
    """
    executable = ensure_environment(venv_dir, progress=progress)
    if template_dir is None:
        template_dir = plumbing.default_template_dir(executable, lock_hash())

    def build(tmp: Path) -> None:
        login = {
            "username": ADMIN_USERNAME,
            "password": secrets.token_urlsafe(18),
            "token": secrets.token_hex(20),
            "secret_key": secrets.token_urlsafe(50),
        }
        plumbing.write_login(tmp / LOGIN_FILE, login)
        env = _label_studio_env(tmp, secret_key=login["secret_key"], document_root=tmp)
        # password and token through the environment: command lines are visible to every local user
        env.update(LABEL_STUDIO_PASSWORD=login["password"], LABEL_STUDIO_USER_TOKEN=login["token"])
        log = tmp / "init.log"
        with tempfile.TemporaryDirectory() as cwd:  # init may leave folders in its working directory
            plumbing.run_logged([str(executable), "init", "--quiet", "--username", ADMIN_USERNAME, "--enable-legacy-api-token"],
                                log, what="initialising the Label Studio template", env=env, cwd=cwd, error=LabelStudioError,
                                fix=f"Run it again; if it keeps failing, remove {executable.parent.parent} to reinstall.")
        if not (tmp / DATABASE_FILE).exists():
            raise LabelStudioError(f"`label-studio init` created no {DATABASE_FILE} in {tmp}; see {log}.")
        with LocalLabelStudio(tmp, venv_dir=venv_dir) as server:
            _check_token_and_remove_projects(server)
        for leftover in (log, tmp / LOG_FILE):
            leftover.unlink(missing_ok=True)

    return plumbing.make_template_once(
        Path(template_dir).absolute(), ready=_template_ready, build=build, error=LabelStudioError, progress=progress,
        what=f"Label Studio template (no {DATABASE_FILE} or {LOGIN_FILE})",
        note="Preparing the Label Studio database template: one time, about 60 s.")


def _template_ready(template_dir: Path) -> bool:
    return (template_dir / DATABASE_FILE).exists() and (template_dir / LOGIN_FILE).exists()


def _check_token_and_remove_projects(server: "LocalLabelStudio") -> None:
    status, _ = _api(server.url, server.token, "GET", "/api/current-user/whoami")
    if status != 200:
        raise LabelStudioError(f"the new template's API token was refused (HTTP {status}) by {server.url}; "
                               f"see {server.log_path}. Remove {server.data_dir} and run again.")
    _, projects = _api(server.url, server.token, "GET", "/api/projects/?page_size=1000")
    for project in projects.get("results", []):
        _api(server.url, server.token, "DELETE", f"/api/projects/{project['id']}/")


def read_login(data_dir: Path) -> dict[str, str]:
    """The credentials of a data dir: ``{username, password, token, secret_key}``."""
    return plumbing.read_login(data_dir, LOGIN_FILE, error=LabelStudioError,
                               template_hint=f"{DEFAULT_VENV}/template-*/{LOGIN_FILE}")


# -- the server ------------------------------------------------------------------------------


class LocalLabelStudio(plumbing.LocalServer):
    """One Label Studio server on 127.0.0.1 (``host`` to listen elsewhere) over a persistent data dir.

    ``port`` 0 picks a free port at every start; any other port must be free, because Label
    Studio would silently move to the next one. ``document_root`` (default: the data dir) is
    the directory local-file storages may serve from. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    error = LabelStudioError

    def __init__(self, data_dir: Path, port: int = 0, document_root: Path | None = None, *,
                 venv_dir: Path | None = None, template_dir: Path | None = None, host: str = HOST) -> None:
        super().__init__(data_dir, port, venv_dir=venv_dir, template_dir=template_dir, host=host)
        self.document_root = Path(document_root).absolute() if document_root else self.data_dir
        self.log_path = self.data_dir / LOG_FILE
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- facts

    def _read_login(self) -> dict[str, str]:
        return read_login(self.data_dir)

    @property
    def token(self) -> str:
        return self.login["token"]

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- life cycle

    def start(self, timeout: float = 90) -> "LocalLabelStudio":
        """Start the server and wait until ``/health`` answers; return self.

        Copies the template into the data dir when it has no database yet (an existing one is
        used as it is). Raises :class:`LabelStudioError` when the port is taken, another server
        runs on this data dir, or the server exits or stays silent for ``timeout`` seconds (the
        message carries the last lines of ``server.log``).
        """
        if self.is_running():
            return self
        running = find_running(self.data_dir)
        if running:
            raise LabelStudioError(f"a Label Studio server already runs on {self.data_dir} at {running['url']} "
                                   f"(pid {running['pid']}); use it, or stop it first (Ctrl-C where it was started).")
        executable = ensure_environment(self.venv_dir)
        port = plumbing.claim_port(self.requested_port, what="Label Studio", error=LabelStudioError,
                                   why=" (it would silently move to another port)")
        if not (self.data_dir / DATABASE_FILE).exists():
            plumbing.copy_template(ensure_template(self.template_dir, venv_dir=self.venv_dir), self.data_dir, DATABASE_FILE)
        _use_wal(self.data_dir / DATABASE_FILE)
        self._login = None
        login = self.login
        env = _label_studio_env(self.data_dir, secret_key=login["secret_key"], document_root=self.document_root)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._process, self._log_file = plumbing.start_in_session(
            [str(executable), "start", "--no-browser", "--internal-host", self.host, "--port", str(port)],
            cwd=self.data_dir, env=env, log_path=self.log_path, banner=f"Label Studio on {self.host}:{port}")
        self.port = port
        plumbing.track(self)
        try:
            self._wait_healthy(timeout, log_offset)
        except BaseException:
            self._terminate(timeout=5)
            raise
        plumbing.write_server_file(self.data_dir, {"url": self.url, "pid": self._process.pid,
                                                   "document_root": str(self.document_root)})
        return self

    def _wait_healthy(self, timeout: float, log_offset: int) -> None:
        process = self._process
        assert process is not None

        def failed() -> str | None:
            code = process.poll()
            if code is not None:
                return (f"Label Studio exited (code {code}) while starting on {self.url}. "
                        f"Last lines of {self.log_path}:\n{plumbing.log_tail(self.log_path, log_offset)}")
            if f"Port {self.port} is in use" in plumbing.log_text(self.log_path, log_offset):  # it would move on its own
                return f"port {self.port} was taken while Label Studio started; start again, or choose another port."
            return None

        plumbing.wait_until(
            lambda: _healthy(self.url), time.monotonic() + timeout, failed=failed, error=LabelStudioError,
            late=lambda: (f"Label Studio did not answer {self.url}/health within {timeout:.0f} s (a loaded machine may "
                          f"need a longer timeout). Last lines of {self.log_path}:\n"
                          f"{plumbing.log_tail(self.log_path, log_offset)}"))

    def wait(self, poll: float = 0.5) -> None:
        """Block while the server runs; raise :class:`LabelStudioError` if it exits on its own."""
        while self.is_running():
            time.sleep(poll)
        if self._process is not None:
            code = self._process.returncode
            self._cleanup(remove_server_file=True)
            raise LabelStudioError(f"Label Studio stopped on its own (exit code {code}); see {self.log_path}.")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (then SIGKILL after ``timeout`` s) to the server's process group; remove server.json."""
        self._terminate(timeout)

    def kill(self) -> None:
        """SIGKILL at once, as a crash would; ``server.json`` stays behind (stale) like after a crash."""
        if self._process is None:
            return
        plumbing.signal_group(self._process, signal.SIGKILL)
        self._process.wait()
        self._cleanup(remove_server_file=False)

    def _terminate(self, timeout: float) -> None:
        if self._process is None:
            return
        plumbing.stop_processes([self._process], timeout)
        self._cleanup(remove_server_file=True)

    def _cleanup(self, remove_server_file: bool) -> None:
        pid = self._process.pid if self._process is not None else None
        self._process = None
        plumbing.untrack(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if remove_server_file:
            plumbing.remove_server_file(self.data_dir, pid)

    def __enter__(self) -> "LocalLabelStudio":
        return self.start()


def find_running(data_dir: Path) -> dict[str, Any] | None:
    """``{"url", "pid"}`` of the server running on ``data_dir``, or None.

    Reads ``server.json`` and trusts it only if the pid is alive and ``/health`` answers, so a
    file left by a crash reads as "not running".
    """
    return plumbing.read_running(data_dir, _healthy)


def _use_wal(database: Path) -> None:
    """Switch the SQLite database to write-ahead logging (persistent, once per database).

    In the default rollback-journal mode a pull's long export (a read) blocks every annotation
    being submitted meanwhile (a write) until it ends: with several annotators at work, pulls
    cut the submission rate to a third (tests/annotation/test_load.py). With WAL, readers and
    the writer no longer wait for each other."""
    import sqlite3

    with sqlite3.connect(database, timeout=30) as connection:
        if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
    connection.close()


def running_document_root(data_dir: Path) -> Path | None:
    """The local-files document root of the server running on ``data_dir`` (from ``server.json``), or None."""
    if find_running(data_dir) is None:
        return None
    root = (plumbing.read_server_file(data_dir) or {}).get("document_root")
    return Path(root) if root else None


# -- helpers ---------------------------------------------------------------------------------


def _label_studio_env(data_dir: Path, *, secret_key: str, document_root: Path) -> dict[str, str]:
    env = plumbing.filtered_environ(_INHERITED_BUT_UNSAFE, _INHERITED_PREFIXES)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        SECRET_KEY=secret_key,
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
        LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
        LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(document_root),
    )
    return env


def _healthy(url: str, timeout: float = 2) -> bool:
    return plumbing.answers_ok(f"{url}/health", timeout)


def _api(url: str, token: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"Token {token}"})
    try:
        with plumbing.opener.open(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
