"""A local argilla-server 2.8.0: its own pinned environment, Redis, the web server and the rq worker.

argilla-server pins an older stack than ours (pydantic 2.9, fastapi 0.115), so it runs from its
own virtual environment, ``<repo>/.venv-argilla`` by default, installed from
``requirements/argilla-server.lock.txt`` and rebuilt only when that lock changes (as Label
Studio's; the process plumbing both share is :mod:`annotation.backends.local_server`). The SDK (``argilla==2.8.0``) lives in
corpusforge's own environment (the ``argilla`` extra).

One :class:`LocalArgilla` is three processes, each in its own session, all on 127.0.0.1:

* ``redis-server`` (Debian's; ``./dev`` installs it) on a free port, no persistence: it only
  carries the job queue, which is empty whenever the server is stopped;
* the web server (``argilla_server start``) over SQLite in the data dir;
* the rq worker pool (``argilla_server worker``): Argilla runs some work (dataset status
  updates, webhooks, hub imports) only as background jobs.

Elasticsearch does not run here: both server processes load the ``corpusforge-sql`` search
engine (:mod:`annotation.backends.argilla.search_engine`, through ``launcher.py``), which
answers searches, progress and metrics from the server's own database. Test and local use only.

A migrated database costs one extra start of the server's Python (10-25 s on a loaded machine),
so it is made once into a template, ``<venv>/template-<lock hash>``, with one owner with random
credentials, and every new data dir starts as a copy. A data dir is persistent and never wiped::

    argilla.db               the database (ARGILLA_HOME_PATH); its presence means "initialised"
    corpusforge-login.json   {"username", "password", "api_key", "secret_key"} of the owner (mode 600)
    corpusforge-migrated     the lock hash the database was last migrated with
    server.log worker.log redis.log   each process's output, appended at every start
    redis/                   Redis's working dir (nothing persists there)
    server.json              {"url", "pid", "worker_pid", "redis_pid", "redis_url"} while running

Failures raise :class:`ArgillaServerError` with the log's last lines and what to do.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from annotation.backends import local_server as plumbing
from annotation.backends.local_server import HOST
from pipelines.core.errors import CorpusforgeError

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCK_FILE = REPO_ROOT / "requirements" / "argilla-server.lock.txt"
DEFAULT_VENV = REPO_ROOT / ".venv-argilla"
ARGILLA_SERVER_VERSION = "2.8.0"
SEARCH_ENGINE_NAME = "corpusforge-sql"
LAUNCHER = Path(__file__).resolve().parent / "launcher.py"

OWNER_USERNAME = "corpusforge"
DATABASE_FILE = "argilla.db"
LOGIN_FILE = "corpusforge-login.json"
MIGRATED_FILE = "corpusforge-migrated"
REDIS_SERVER = "redis-server"
WORKERS = 1  # rq workers: the jobs of a test-sized server are few and short

# variables the server (or the libraries under it) read, which a user's shell must not steer
_INHERITED_BUT_UNSAFE = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV",
                         "USERNAME", "PASSWORD", "API_KEY", "OAUTHLIB_INSECURE_TRANSPORT")
_INHERITED_PREFIXES = ("ARGILLA_", "HF_", "SPACE_", "OAUTH2_", "CORPUSFORGE_ARGILLA_")

Progress = Callable[[str], None]


class ArgillaServerError(CorpusforgeError):
    """The local Argilla could not be installed, prepared, started or stopped."""


ENVIRONMENT = plumbing.PinnedEnvironment(
    title=f"argilla-server {ARGILLA_SERVER_VERSION}", package="argilla-server", lock_file=LOCK_FILE,
    ready_path="bin/python", installed_glob="lib/python*/site-packages/argilla_server/__init__.py",
    size_note="about 600 MB", error=ArgillaServerError,
)


# -- the environment -------------------------------------------------------------------------


def lock_hash() -> str:
    """sha256 of ``requirements/argilla-server.lock.txt``: what the environment and template are made from."""
    return ENVIRONMENT.lock_hash()


def ensure_environment(venv_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """Return the argilla-server environment's ``python``, installing the environment first if needed.

    ``venv_dir`` defaults to ``<repo>/.venv-argilla``. Built (uv next to this Python, else pip)
    into ``<venv_dir>.tmp`` and renamed into place; rebuilt only when the lock file's sha256
    differs from the stamp inside. Raises :class:`ArgillaServerError` naming the failed command.
    """
    return ENVIRONMENT.ensure(Path(venv_dir or DEFAULT_VENV), progress=progress) / "bin" / "python"


def redis_server_executable() -> str:
    """Path of Debian's ``redis-server``; raises :class:`ArgillaServerError` saying how to install it."""
    found = shutil.which(REDIS_SERVER) or (f"/usr/bin/{REDIS_SERVER}" if Path(f"/usr/bin/{REDIS_SERVER}").exists()
                                           else None)
    if found is None:
        raise ArgillaServerError("redis-server is not installed; Argilla's job queue needs it. Run `./dev test` "
                                 "once (it installs Debian's redis-server), or `apt-get install redis-server`.")
    return found


# -- the template ----------------------------------------------------------------------------


def ensure_template(template_dir: Path | None = None, *, venv_dir: Path | None = None,
                    progress: Progress | None = None) -> Path:
    """Return a migrated Argilla home (database with one owner) to copy data dirs from, making it once.

    ``template_dir`` defaults to ``<venv_dir>/template-<first 12 hex of the lock hash>``. Built
    in a ``.tmp`` sibling and renamed into place: random credentials (owner ``corpusforge``,
    password, API key, JWT secret) go to ``corpusforge-login.json`` (mode 600), then
    ``launcher.py prepare`` migrates the database and creates the owner. Raises
    :class:`ArgillaServerError`.
    """
    python = ensure_environment(venv_dir, progress=progress)
    if template_dir is None:
        template_dir = plumbing.default_template_dir(python, lock_hash())

    def build(tmp: Path) -> None:
        login = {
            "username": OWNER_USERNAME,
            "password": secrets.token_urlsafe(18),
            "api_key": secrets.token_urlsafe(30),
            "secret_key": secrets.token_hex(32),
        }
        plumbing.write_login(tmp / LOGIN_FILE, login)
        _prepare_database(python, tmp, tmp / "prepare.log", login=login)
        (tmp / "prepare.log").unlink(missing_ok=True)

    return plumbing.make_template_once(
        Path(template_dir).absolute(), ready=_template_ready, build=build, error=ArgillaServerError, progress=progress,
        what=f"Argilla template (no {DATABASE_FILE} or {LOGIN_FILE})",
        note="Preparing the Argilla database template: one time, 10-30 s.")


def _template_ready(template_dir: Path) -> bool:
    return all((template_dir / name).exists() for name in (DATABASE_FILE, LOGIN_FILE, MIGRATED_FILE))


def _prepare_database(python: Path, home: Path, log: Path, *, login: dict[str, str] | None = None) -> None:
    """Migrate ``home``'s database to the newest revision (and create the owner), then stamp it."""
    env = _argilla_env(home, redis_url="redis://127.0.0.1:1/0", secret_key="unused")
    if login is not None:  # secrets through the environment: command lines are visible to every local user
        env.update(CORPUSFORGE_ARGILLA_OWNER_USERNAME=login["username"],
                   CORPUSFORGE_ARGILLA_OWNER_PASSWORD=login["password"],
                   CORPUSFORGE_ARGILLA_OWNER_API_KEY=login["api_key"])
    plumbing.run_logged([str(python), str(LAUNCHER), "prepare"], log, what="migrating the Argilla database", env=env,
                        cwd=home, error=ArgillaServerError, fix=f"Run it again; if it keeps failing, remove {python.parent.parent} to reinstall.")
    (home / MIGRATED_FILE).write_text(lock_hash() + "\n")


def read_login(data_dir: Path) -> dict[str, str]:
    """The owner's credentials of a data dir: ``{username, password, api_key, secret_key}``."""
    return plumbing.read_login(data_dir, LOGIN_FILE, error=ArgillaServerError,
                               template_hint=f"{DEFAULT_VENV}/template-*/{LOGIN_FILE}")


# -- the server ------------------------------------------------------------------------------


class LocalArgilla(plumbing.LocalServer):
    """One argilla-server (with its Redis and rq worker) on 127.0.0.1 over a persistent data dir.

    ``port`` 0 picks a free port at every start; any other port must be free. Use as a context
    manager, or call :meth:`start` and :meth:`stop`. ``api_key`` is the owner's, for
    ``argilla.Argilla(api_url=server.url, api_key=server.api_key)``.
    """

    error = ArgillaServerError

    def __init__(self, data_dir: Path, port: int = 0, *, venv_dir: Path | None = None,
                 template_dir: Path | None = None) -> None:
        super().__init__(data_dir, port, venv_dir=venv_dir, template_dir=template_dir)
        self.redis_port: int | None = None
        self.log_path = self.data_dir / "server.log"
        self.worker_log_path = self.data_dir / "worker.log"
        self.redis_log_path = self.data_dir / "redis.log"
        self._processes: dict[str, subprocess.Popen[bytes]] = {}  # "redis", "worker", "server"
        self._log_files: list[Any] = []

    # -- facts

    def _read_login(self) -> dict[str, str]:
        return read_login(self.data_dir)

    @property
    def redis_url(self) -> str:
        if self.redis_port is None:
            raise ArgillaServerError("Redis has no port yet: call start() first")
        return f"redis://{HOST}:{self.redis_port}/0"

    @property
    def api_key(self) -> str:
        return self.login["api_key"]

    @property
    def pid(self) -> int | None:
        process = self._processes.get("server")
        return process.pid if process is not None else None

    def is_running(self) -> bool:
        """True while all three processes (Redis, worker, web server) are alive."""
        return len(self._processes) == 3 and all(p.poll() is None for p in self._processes.values())

    # -- life cycle

    def start(self, timeout: float = 120) -> "LocalArgilla":
        """Start Redis, the worker and the web server; wait until the server answers and a worker listens.

        Copies the template into the data dir when it has no database yet, and migrates an
        existing database made with another lock. Raises :class:`ArgillaServerError` when a port
        is taken, another server runs on this data dir, or a process exits or stays silent for
        ``timeout`` seconds (the message carries the last lines of its log).
        """
        if self.is_running():
            return self
        if self._processes:  # one of them died: start over cleanly
            self._terminate(timeout=5)
        running = find_running(self.data_dir)
        if running:
            raise ArgillaServerError(f"an Argilla server already runs on {self.data_dir} at {running['url']} "
                                     f"(pid {running['pid']}); use it, or stop it first.")
        redis_server = redis_server_executable()
        python = ensure_environment(self.venv_dir)
        if not (self.data_dir / DATABASE_FILE).exists():
            plumbing.copy_template(ensure_template(self.template_dir, venv_dir=self.venv_dir), self.data_dir, DATABASE_FILE)
        self._login = None
        login = self.login
        migrated = self.data_dir / MIGRATED_FILE
        if not migrated.exists() or migrated.read_text().strip() != lock_hash():
            _prepare_database(python, self.data_dir, self.data_dir / "prepare.log")
        deadline = time.monotonic() + timeout
        try:
            self._start_redis(redis_server, deadline)
            env = _argilla_env(self.data_dir, redis_url=self.redis_url, secret_key=login["secret_key"])
            self.port = plumbing.claim_port(self.requested_port, what="the Argilla server", error=ArgillaServerError)
            self._spawn("worker", [str(python), str(LAUNCHER), "worker", "--num-workers", str(WORKERS)],
                        self.worker_log_path, env)
            self._spawn("server", [str(python), str(LAUNCHER), "start", "--host", HOST, "--port", str(self.port),
                                   "--no-access-log"], self.log_path, env)
            plumbing.track(self)
            self._wait(deadline, "server", self.log_path, lambda: _status_ok(self.url),
                       what=f"answer {self.url}/api/v1/status")
            self._wait(deadline, "worker", self.worker_log_path,
                       lambda: _redis_command(self.redis_port, "SCARD", "rq:workers") >= 1,
                       what="register an rq worker in Redis")
        except BaseException:
            self._terminate(timeout=5)
            raise
        plumbing.write_server_file(self.data_dir, {
            "url": self.url, "pid": self._processes["server"].pid, "worker_pid": self._processes["worker"].pid,
            "redis_pid": self._processes["redis"].pid, "redis_url": self.redis_url})
        return self

    def _start_redis(self, redis_server: str, deadline: float) -> None:
        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self.redis_port = plumbing.claim_port(0, what="Redis", error=ArgillaServerError)
        # no persistence: the queue only matters while the server runs
        self._spawn("redis", [redis_server, "--bind", HOST, "--port", str(self.redis_port), "--save", "",
                              "--appendonly", "no", "--dir", str(redis_dir), "--daemonize", "no",
                              "--protected-mode", "yes"], self.redis_log_path, None)
        self._wait(deadline, "redis", self.redis_log_path,
                   lambda: _redis_command(self.redis_port, "PING") == "PONG", what=f"answer PING on {self.redis_url}")

    def _spawn(self, name: str, command: list[str], log_path: Path, env: dict[str, str] | None) -> None:
        self._processes[name], log = plumbing.start_in_session(command, cwd=self.data_dir, env=env, log_path=log_path,
                                                               banner=name)
        self._log_files.append(log)

    def _wait(self, deadline: float, name: str, log_path: Path, ready: Callable[[], bool], *, what: str) -> None:
        offset = plumbing.log_offset_of_last_start(log_path)
        logs = {"server": self.log_path, "worker": self.worker_log_path, "redis": self.redis_log_path}

        def failed() -> str | None:
            for other, process in self._processes.items():
                code = process.poll()
                if code is not None:
                    path = logs[other]
                    return (f"Argilla's {other} exited (code {code}) while starting. Last lines of {path}:\n"
                            f"{plumbing.log_tail(path, plumbing.log_offset_of_last_start(path))}")
            return None

        plumbing.wait_until(ready, deadline, failed=failed, error=ArgillaServerError,
                            late=lambda: (f"Argilla's {name} did not {what} in time (a loaded machine may need a longer "
                                          f"timeout). Last lines of {log_path}:\n{plumbing.log_tail(log_path, offset)}"))

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (SIGKILL after ``timeout`` s) to the server, then the worker, then Redis; remove server.json."""
        self._terminate(timeout)

    def _terminate(self, timeout: float) -> None:
        server_pid = self.pid
        # the web server and the worker together (the worker's warm shutdown takes seconds), Redis last;
        # then SIGKILL to each group anyway: the worker pool's forked workers, should any linger
        for names in (("server", "worker"), ("redis",)):
            plumbing.stop_processes([self._processes[n] for n in names if n in self._processes], timeout, sweep_group=True)
        self._processes.clear()
        plumbing.untrack(self)
        for log in self._log_files:
            log.close()
        self._log_files.clear()
        plumbing.remove_server_file(self.data_dir, server_pid)

    def __enter__(self) -> "LocalArgilla":
        return self.start()


def find_running(data_dir: Path) -> dict[str, Any] | None:
    """``{"url", "pid"}`` of the server running on ``data_dir``, or None (a crash's stale file reads as None)."""
    return plumbing.read_running(data_dir, _status_ok)


# -- helpers ---------------------------------------------------------------------------------


def _argilla_env(home: Path, *, redis_url: str, secret_key: str) -> dict[str, str]:
    env = plumbing.filtered_environ(_INHERITED_BUT_UNSAFE, _INHERITED_PREFIXES)
    env.update(
        ARGILLA_HOME_PATH=str(home),
        ARGILLA_REDIS_URL=redis_url,
        ARGILLA_SEARCH_ENGINE=SEARCH_ENGINE_NAME,
        ARGILLA_AUTH_SECRET_KEY=secret_key,  # browser sessions (JWTs) survive restarts
        ARGILLA_ENABLE_TELEMETRY="false",
        ARGILLA_SHOW_HUGGINGFACE_SPACE_PERSISTENT_STORAGE_WARNING="false",
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_DATASETS_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        COLUMNS="160",  # the worker logs through rich, which wraps at 80 columns without a terminal
    )
    return env


def _status_ok(url: str, timeout: float = 2) -> bool:
    """``GET /api/v1/status`` (no auth) answers 200; it also asks the search engine, so the plugin is loaded."""
    return plumbing.answers_ok(f"{url}/api/v1/status", timeout)


def _redis_command(port: int | None, *args: str, timeout: float = 2) -> Any:
    """One Redis command over RESP; returns a simple string or an integer (enough for PING and SCARD)."""
    if port is None:
        raise OSError("no Redis port")
    payload = f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(payload)
        reply = s.recv(4096).split(b"\r\n", 1)[0].decode()
    if reply.startswith("+"):
        return reply[1:]
    if reply.startswith(":"):
        return int(reply[1:])
    raise OSError(f"unexpected Redis reply {reply!r}")
