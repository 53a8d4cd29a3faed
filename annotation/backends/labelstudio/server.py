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
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.core.errors import CorpusforgeError
from pipelines.core.fileio import atomic_write_json

REPO_ROOT = Path(__file__).resolve().parents[3]
LOCK_FILE = REPO_ROOT / "requirements" / "labelstudio.lock.txt"
DEFAULT_VENV = REPO_ROOT / ".venv-labelstudio"
LABEL_STUDIO_VERSION = "1.23.2"

HOST = "127.0.0.1"
ADMIN_USERNAME = "admin@corpusforge.local"
DATABASE_FILE = "label_studio.sqlite3"
LOGIN_FILE = "corpusforge-login.json"
SERVER_FILE = "server.json"
LOG_FILE = "server.log"
STAMP_FILE = "corpusforge-lock.sha256"
INSTALL_LOG = "corpusforge-install.log"

# Label Studio reads these plain names (besides LABEL_STUDIO_*): a user's shell must not steer it.
_INHERITED_BUT_UNSAFE = ("PORT", "HOST", "USERNAME", "PASSWORD", "USER_TOKEN", "DEBUG", "SECRET_KEY",
                         "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
_INHERITED_PREFIXES = ("LABEL_STUDIO_", "HEARTEX_", "DJANGO_")

Progress = Callable[[str], None]


class LabelStudioError(CorpusforgeError):
    """The local Label Studio could not be installed, prepared, started or stopped."""


# -- the environment -------------------------------------------------------------------------


def lock_hash() -> str:
    """sha256 of ``requirements/labelstudio.lock.txt``: what the environment and template are made from."""
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def ensure_environment(venv_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """Return the ``label-studio`` executable, installing its environment first if needed.

    ``venv_dir`` defaults to ``<repo>/.venv-labelstudio``. The environment is built (with uv
    next to this Python, else pip) into ``<venv_dir>.tmp`` and renamed into place, so a crashed
    install never leaves a half environment; it is rebuilt only when the lock file's sha256
    differs from the stamp in it. ``progress`` receives one line before a (slow) install.
    Raises :class:`LabelStudioError` naming the failed command and its log.
    """
    venv_dir = Path(venv_dir or DEFAULT_VENV).absolute()
    wanted = lock_hash()
    executable = venv_dir / "bin" / "label-studio"
    if _environment_ready(venv_dir, wanted):
        return executable
    with _exclusive(venv_dir.with_name(venv_dir.name + ".lock")):
        if _environment_ready(venv_dir, wanted):  # another process built it while we waited
            return executable
        if progress:
            progress(f"Installing Label Studio {LABEL_STUDIO_VERSION} into {venv_dir}: a one-time install "
                     "of about 1 GB that takes 30-60 s.")
        tmp = venv_dir.with_name(venv_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log = tmp / INSTALL_LOG
        for command in _install_commands(tmp):
            _run_logged(command, log, what="installing Label Studio",
                        fix=f"Check access to the package index (or uv's cache) and run the command again; "
                            f"the half-built {tmp} is removed on the next try.")
        _retarget_scripts(tmp, venv_dir)
        if not (tmp / "bin" / "label-studio").exists():
            raise LabelStudioError(f"installing Label Studio finished but {tmp}/bin/label-studio is missing; "
                                   f"see {log}. Does {LOCK_FILE} still pin label-studio?")
        (tmp / STAMP_FILE).write_text(wanted + "\n")
        old = venv_dir.with_name(venv_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if venv_dir.exists():
            os.rename(venv_dir, old)  # two renames: a crash between them only means "rebuild"
        os.rename(tmp, venv_dir)
        shutil.rmtree(old, ignore_errors=True)
    return executable


def _environment_ready(venv_dir: Path, wanted: str) -> bool:
    stamp = venv_dir / STAMP_FILE
    return stamp.exists() and stamp.read_text().strip() == wanted and (venv_dir / "bin" / "label-studio").exists()


def _install_commands(tmp: Path) -> list[list[str]]:
    python = tmp / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        found = shutil.which("uv")
        uv = Path(found) if found else None
    if uv is not None:
        # --relocatable: scripts find their python relative to themselves, so the rename is safe
        return [[str(uv), "venv", "--quiet", "--relocatable", "--allow-existing", "--python", sys.executable, str(tmp)],
                [str(uv), "pip", "sync", "--compile-bytecode", "--python", str(python), str(LOCK_FILE)]]
    return [[sys.executable, "-m", "venv", str(tmp)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(LOCK_FILE)]]


def _retarget_scripts(tmp: Path, final: Path) -> None:
    """pip writes the build path into script shebangs (uv's relocatable scripts have none)."""
    old, new = str(tmp).encode(), str(final).encode()
    for path in (tmp / "bin").iterdir():
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))


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
        template_dir = executable.parent.parent / f"template-{lock_hash()[:12]}"
    template_dir = Path(template_dir).absolute()
    if _template_ready(template_dir):
        return template_dir
    with _exclusive(template_dir.with_name(template_dir.name + ".lock")):
        if _template_ready(template_dir):
            return template_dir
        if template_dir.exists():
            raise LabelStudioError(f"{template_dir} exists but is not a complete Label Studio template "
                                   f"(no {DATABASE_FILE} or {LOGIN_FILE}); remove it and run again.")
        if progress:
            progress("Preparing the Label Studio database template: one time, about 60 s.")
        tmp = template_dir.with_name(template_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        login = {
            "username": ADMIN_USERNAME,
            "password": secrets.token_urlsafe(18),
            "token": secrets.token_hex(20),
            "secret_key": secrets.token_urlsafe(50),
        }
        _write_login(tmp / LOGIN_FILE, login)
        env = _label_studio_env(tmp, secret_key=login["secret_key"], document_root=tmp)
        # password and token through the environment: command lines are visible to every local user
        env.update(LABEL_STUDIO_PASSWORD=login["password"], LABEL_STUDIO_USER_TOKEN=login["token"])
        log = tmp / "init.log"
        with tempfile.TemporaryDirectory() as cwd:  # init may leave folders in its working directory
            _run_logged([str(executable), "init", "--quiet", "--username", ADMIN_USERNAME, "--enable-legacy-api-token"],
                        log, what="initialising the Label Studio template", env=env, cwd=cwd,
                        fix=f"Run it again; if it keeps failing, remove {executable.parent.parent} to reinstall.")
        if not (tmp / DATABASE_FILE).exists():
            raise LabelStudioError(f"`label-studio init` created no {DATABASE_FILE} in {tmp}; see {log}.")
        with LocalLabelStudio(tmp, venv_dir=venv_dir) as server:
            _check_token_and_remove_projects(server)
        for leftover in (log, tmp / LOG_FILE):
            leftover.unlink(missing_ok=True)
        os.rename(tmp, template_dir)
    return template_dir


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


def _write_login(path: Path, login: dict[str, str]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(login, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o600)


def read_login(data_dir: Path) -> dict[str, str]:
    """The credentials of a data dir: ``{username, password, token, secret_key}``."""
    path = Path(data_dir) / LOGIN_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabelStudioError(f"{path} is missing: {data_dir} was not made by corpusforge from its template. "
                               "Use another data dir, or move this one away to start afresh.") from None
    except ValueError as exc:
        raise LabelStudioError(f"{path} is not valid JSON ({exc}); restore it from the template "
                               f"({DEFAULT_VENV}/template-*/{LOGIN_FILE}).") from None


# -- the server ------------------------------------------------------------------------------


class LocalLabelStudio:
    """One Label Studio server on 127.0.0.1 over a persistent data dir.

    ``port`` 0 picks a free port at every start; any other port must be free, because Label
    Studio would silently move to the next one. ``document_root`` (default: the data dir) is
    the directory local-file storages may serve from. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(self, data_dir: Path, port: int = 0, document_root: Path | None = None, *,
                 venv_dir: Path | None = None, template_dir: Path | None = None) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.requested_port = port
        self.port: int | None = port or None
        self.document_root = Path(document_root).absolute() if document_root else self.data_dir
        self.venv_dir = venv_dir
        self.template_dir = template_dir
        self.log_path = self.data_dir / LOG_FILE
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._login: dict[str, str] | None = None

    # -- facts

    @property
    def url(self) -> str:
        if self.port is None:
            raise LabelStudioError("the server has no port yet: call start() first")
        return f"http://{HOST}:{self.port}"

    @property
    def username(self) -> str:
        return self.login["username"]

    @property
    def password(self) -> str:
        return self.login["password"]

    @property
    def token(self) -> str:
        return self.login["token"]

    @property
    def login(self) -> dict[str, str]:
        if self._login is None:
            self._login = read_login(self.data_dir)
        return self._login

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
        port = _claim_port(self.requested_port)
        if not (self.data_dir / DATABASE_FILE).exists():
            self._copy_template()
        self._login = None
        login = self.login
        env = _label_studio_env(self.data_dir, secret_key=login["secret_key"], document_root=self.document_root)
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n--- corpusforge: starting Label Studio on {HOST}:{port} at {time.ctime()}\n".encode())
        self._log_file.flush()
        # its own session: Ctrl-C in a terminal reaches us, and we stop the server cleanly
        self._process = subprocess.Popen(
            [str(executable), "start", "--no-browser", "--internal-host", HOST, "--port", str(port)],
            cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
            stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.port = port
        _started.add(self)
        try:
            self._wait_healthy(timeout, log_offset)
        except BaseException:
            self._terminate(timeout=5)
            raise
        atomic_write_json(self.data_dir / SERVER_FILE, {"url": self.url, "pid": self._process.pid,
                                                        "document_root": str(self.document_root)})
        return self

    def _copy_template(self) -> None:
        template = ensure_template(self.template_dir, venv_dir=self.venv_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(template, self.data_dir, dirs_exist_ok=True,
                        ignore=lambda d, names: [DATABASE_FILE] if Path(d) == template else [])
        # the database last, by rename: its presence means the copy is complete
        partial = self.data_dir / f".{DATABASE_FILE}.partial"
        shutil.copy2(template / DATABASE_FILE, partial)
        os.replace(partial, self.data_dir / DATABASE_FILE)

    def _wait_healthy(self, timeout: float, log_offset: int) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while True:
            code = self._process.poll()
            if code is not None:
                raise LabelStudioError(f"Label Studio exited (code {code}) while starting on {self.url}. "
                                       f"Last lines of {self.log_path}:\n{self._log_tail(log_offset)}")
            if f"Port {self.port} is in use" in self._log_text(log_offset):  # it would move on its own
                raise LabelStudioError(f"port {self.port} was taken while Label Studio started; start again, "
                                       "or choose another port.")
            if _healthy(self.url):
                return
            if time.monotonic() > deadline:
                raise LabelStudioError(f"Label Studio did not answer {self.url}/health within {timeout:.0f} s "
                                       f"(a loaded machine may need a longer timeout). Last lines of "
                                       f"{self.log_path}:\n{self._log_tail(log_offset)}")
            time.sleep(0.25)

    def _log_text(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self, offset: int, lines: int = 20) -> str:
        return "\n".join(self._log_text(offset).splitlines()[-lines:]) or "(the log is empty)"

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
        _signal_group(self._process, signal.SIGKILL)
        self._process.wait()
        self._cleanup(remove_server_file=False)

    def _terminate(self, timeout: float) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            _signal_group(self._process, signal.SIGTERM)
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self._process, signal.SIGKILL)
                self._process.wait()
        self._cleanup(remove_server_file=True)

    def _cleanup(self, remove_server_file: bool) -> None:
        pid = self._process.pid if self._process is not None else None
        self._process = None
        _started.discard(self)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if remove_server_file:
            server_file = self.data_dir / SERVER_FILE
            try:
                if json.loads(server_file.read_text()).get("pid") == pid:
                    server_file.unlink()
            except (FileNotFoundError, ValueError):
                pass

    def __enter__(self) -> "LocalLabelStudio":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.is_running() else "stopped"
        return f"LocalLabelStudio({str(self.data_dir)!r}, {state})"


def find_running(data_dir: Path) -> dict[str, Any] | None:
    """``{"url", "pid"}`` of the server running on ``data_dir``, or None.

    Reads ``server.json`` and trusts it only if the pid is alive and ``/health`` answers, so a
    file left by a crash reads as "not running".
    """
    try:
        info = json.loads((Path(data_dir) / SERVER_FILE).read_text())
        pid, url = int(info["pid"]), str(info["url"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    if not _pid_alive(pid) or not _healthy(url):
        return None
    return {"url": url, "pid": pid}


def running_document_root(data_dir: Path) -> Path | None:
    """The local-files document root of the server running on ``data_dir`` (from ``server.json``), or None."""
    if find_running(data_dir) is None:
        return None
    try:
        root = json.loads((Path(data_dir) / SERVER_FILE).read_text()).get("document_root")
    except (FileNotFoundError, ValueError):
        return None
    return Path(root) if root else None


# -- helpers ---------------------------------------------------------------------------------

_started: set[LocalLabelStudio] = set()  # started here and not stopped yet


@atexit.register
def _stop_leftover_servers() -> None:
    # a server lives in its own session, so nothing else stops it when this process ends
    for server in list(_started):
        server.stop(timeout=5)


def _label_studio_env(data_dir: Path, *, secret_key: str, document_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in _INHERITED_BUT_UNSAFE and not k.startswith(_INHERITED_PREFIXES)}
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


def _run_logged(command: list[str], log: Path, *, what: str, fix: str, env: dict[str, str] | None = None,
                cwd: str | Path | None = None) -> None:
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(command)}\n".encode())
        f.flush()
        code = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise LabelStudioError(f"{what} failed: `{' '.join(command)}` exited with code {code}. "
                               f"Full log: {log}; its last lines:\n{tail}\n{fix}")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock, so that two commands never build the same thing at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _claim_port(port: int) -> int:
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    if not 0 < port < 65536:
        raise LabelStudioError(f"port {port} is not a TCP port; use 1-65535, or 0 for any free port.")
    if _port_in_use(port):
        raise LabelStudioError(f"port {port} on {HOST} is already in use, so Label Studio cannot start there "
                               f"(it would silently move to another port). Stop what listens on port {port}, "
                               f"or choose another port (e.g. --port {port + 1}, or --port 0 for any free one).")
    return port


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        if s.connect_ex((HOST, port)) == 0:  # what Label Studio itself checks
            return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the server will bind: SO_REUSEADDR, so sockets in TIME_WAIT do not count
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session: its group id is its pid
    except ProcessLookupError:
        pass


# local servers only: never through an HTTP proxy from the environment
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(url: str, timeout: float = 2) -> bool:
    try:
        with _opener.open(f"{url}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # URLError, refused, reset, timeout
        return False


def _api(url: str, token: str, method: str, path: str) -> tuple[int, Any]:
    request = urllib.request.Request(f"{url}{path}", method=method, headers={"Authorization": f"Token {token}"})
    try:
        with _opener.open(request, timeout=30) as response:
            body = response.read()
            return response.status, json.loads(body) if body else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
