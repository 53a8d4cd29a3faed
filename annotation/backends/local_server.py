"""Process plumbing shared by the local annotation servers (Label Studio, argilla-server).

Each server runs from its own virtual environment, pinned by a lock file, as processes of
its own on 127.0.0.1. What they share lives here:

* :class:`PinnedEnvironment`: a virtual environment installed from a lock file into a ``.tmp``
  sibling and renamed into place, rebuilt only when the lock's sha256 differs from the stamp in it;
* data dirs copied from a template (:func:`copy_template`), with credentials in a mode-600 JSON
  file (:func:`write_login`, :func:`read_login`);
* ports (:func:`claim_port`), processes started in their own session with their output appended
  to a log (:func:`start_in_session`), waiting until they answer (:func:`wait_until`), stopping
  them with SIGTERM then SIGKILL (:func:`stop_processes`), and stopping at exit whatever this
  process started and did not stop (:func:`track`, :func:`untrack`);
* ``server.json``, the record of a running server (:func:`write_server_file`,
  :func:`read_running`, :func:`remove_server_file`), and the last lines of a log for errors.

Every function that can fail takes the calling server's error class (``error``), so that a
failure reads as that server's (:class:`LabelStudioError`, :class:`ArgillaServerError`).
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol
from urllib.request import ProxyHandler, build_opener

from pipelines.core.errors import CorpusforgeError
from pipelines.core.fileio import atomic_write_json

HOST = "127.0.0.1"
SERVER_FILE = "server.json"
STAMP_FILE = "corpusforge-lock.sha256"
INSTALL_LOG = "corpusforge-install.log"
START_BANNER = "\n--- corpusforge: starting"  # each start's first log line begins with it

Progress = Callable[[str], None]
ErrorClass = type[CorpusforgeError]


# -- the environment -------------------------------------------------------------------------


@dataclass(frozen=True)
class PinnedEnvironment:
    """A server's own virtual environment, installed from ``lock_file``.

    ``ready_path`` (relative to the environment) exists once the environment is usable;
    ``installed_glob`` must match after an install, else the lock no longer pins ``package``.
    """

    title: str  # "Label Studio 1.23.2", for the progress line
    package: str  # what the lock must pin, for the error when it does not
    lock_file: Path
    ready_path: str
    installed_glob: str
    size_note: str  # "about 1 GB that takes 30-60 s"
    error: ErrorClass

    def lock_hash(self) -> str:
        """sha256 of the lock file: what the environment (and a template made by it) is made from."""
        return hashlib.sha256(self.lock_file.read_bytes()).hexdigest()

    def ready(self, venv_dir: Path, wanted: str) -> bool:
        stamp = venv_dir / STAMP_FILE
        return stamp.exists() and stamp.read_text().strip() == wanted and (venv_dir / self.ready_path).exists()

    def ensure(self, venv_dir: Path, *, progress: Progress | None = None) -> Path:
        """Return ``venv_dir`` (absolute), installing the environment first if needed.

        Built (with uv next to this Python, else pip) into ``<venv_dir>.tmp`` and renamed into
        place, so a crashed install never leaves a half environment; two commands never build it
        at once. Raises ``error`` naming the failed command and its log.
        """
        venv_dir = Path(venv_dir).absolute()
        wanted = self.lock_hash()
        if self.ready(venv_dir, wanted):
            return venv_dir
        with exclusive(venv_dir.with_name(venv_dir.name + ".lock")):
            if self.ready(venv_dir, wanted):  # another process built it while we waited
                return venv_dir
            if progress:
                progress(f"Installing {self.title} into {venv_dir}: a one-time install of {self.size_note}.")
            tmp = venv_dir.with_name(venv_dir.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            log = tmp / INSTALL_LOG
            for command in install_commands(tmp, self.lock_file):
                run_logged(command, log, what=f"installing {self.package}", error=self.error,
                           fix=f"Check access to the package index (or uv's cache) and run the command again; "
                               f"the half-built {tmp} is removed on the next try.")
            retarget_scripts(tmp, venv_dir)
            if not any(tmp.glob(self.installed_glob)):
                raise self.error(f"installing {self.package} finished but {tmp} has no {self.installed_glob}; "
                                 f"see {log}. Does {self.lock_file} still pin {self.package}?")
            (tmp / STAMP_FILE).write_text(wanted + "\n")
            old = venv_dir.with_name(venv_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if venv_dir.exists():
                os.rename(venv_dir, old)  # two renames: a crash between them only means "rebuild"
            os.rename(tmp, venv_dir)
            shutil.rmtree(old, ignore_errors=True)
        return venv_dir


def install_commands(tmp: Path, lock_file: Path) -> list[list[str]]:
    """The commands that make a virtual environment at ``tmp`` and sync it to ``lock_file``."""
    python = tmp / "bin" / "python"
    uv = Path(sys.executable).parent / "uv"
    if not uv.exists():
        found = shutil.which("uv")
        uv = Path(found) if found else None
    if uv is not None:
        # --relocatable: scripts find their python relative to themselves, so the rename is safe
        return [[str(uv), "venv", "--quiet", "--relocatable", "--allow-existing", "--python", sys.executable, str(tmp)],
                [str(uv), "pip", "sync", "--compile-bytecode", "--python", str(python), str(lock_file)]]
    return [[sys.executable, "-m", "venv", str(tmp)],
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(lock_file)]]


def retarget_scripts(tmp: Path, final: Path) -> None:
    """pip writes the build path into script shebangs (uv's relocatable scripts have none)."""
    old, new = str(tmp).encode(), str(final).encode()
    for path in (tmp / "bin").iterdir():
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1_000_000:
            continue
        data = path.read_bytes()
        if old in data:
            path.write_bytes(data.replace(old, new))


def run_logged(command: list[str], log: Path, *, what: str, fix: str, error: ErrorClass,
               env: dict[str, str] | None = None, cwd: str | Path | None = None) -> None:
    """Run ``command`` with its output appended to ``log``; a non-zero exit raises ``error`` with the log's tail."""
    with open(log, "ab") as f:
        f.write(f"$ {' '.join(command)}\n".encode())
        f.flush()
        code = subprocess.call(command, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise error(f"{what} failed: `{' '.join(command)}` exited with code {code}. "
                    f"Full log: {log}; its last lines:\n{tail}\n{fix}")


def filtered_environ(unsafe: Iterable[str], prefixes: tuple[str, ...]) -> dict[str, str]:
    """This process's environment without the variables a user's shell must not use to steer a server."""
    unsafe = set(unsafe)
    return {k: v for k, v in os.environ.items() if k not in unsafe and not k.startswith(prefixes)}


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """An inter-process lock, so that two commands never build the same thing at once."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# -- templates and credentials ---------------------------------------------------------------


def copy_template(template: Path, data_dir: Path, database_file: str) -> None:
    """Copy a template into ``data_dir``; the database last, by rename: its presence means the copy is complete."""
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, data_dir, dirs_exist_ok=True,
                    ignore=lambda d, names: [database_file] if Path(d) == template else [])
    partial = data_dir / f".{database_file}.partial"
    shutil.copy2(template / database_file, partial)
    os.replace(partial, data_dir / database_file)


def default_template_dir(interpreter: Path, lock_digest: str) -> Path:
    """``<venv>/template-<first 12 hex of the lock hash>`` beside the environment of ``interpreter``
    (its ``bin/`` program): a new lock gets a new template along with its new environment."""
    return interpreter.parent.parent / f"template-{lock_digest[:12]}"


def make_template_once(template_dir: Path, *, ready: Callable[[Path], bool], build: Callable[[Path], None], what: str,
                       note: str, error: ErrorClass, progress: Progress | None = None) -> Path:
    """Return ``template_dir``, first making it with ``build`` unless ``ready`` says it is complete.

    ``build`` fills an empty ``.tmp`` sibling (mode 700), which is then renamed into place, so a
    crash never leaves a half template; two commands never build it at once. A folder that is
    there but not ready raises ``error`` (``what`` names it); ``progress`` gets ``note`` first.
    """
    if ready(template_dir):
        return template_dir
    with exclusive(template_dir.with_name(template_dir.name + ".lock")):
        if ready(template_dir):  # another process made it while we waited
            return template_dir
        if template_dir.exists():
            raise error(f"{template_dir} exists but is not a complete {what}; remove it and run again.")
        if progress:
            progress(note)
        tmp = template_dir.with_name(template_dir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True, mode=0o700)
        build(tmp)
        os.rename(tmp, template_dir)
    return template_dir


def write_login(path: Path, login: dict[str, str]) -> None:
    """Credentials as JSON, readable by this user only (mode 600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(login, f, indent=2)
        f.write("\n")
    os.chmod(path, 0o600)


def read_login(data_dir: Path, login_file: str, *, error: ErrorClass, template_hint: str) -> dict[str, str]:
    """The credentials of a data dir; a missing or broken file raises ``error`` saying what to do."""
    path = Path(data_dir) / login_file
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path} is missing: {data_dir} was not made by corpusforge from its template. "
                    "Use another data dir, or move this one away to start afresh.") from None
    except ValueError as exc:
        raise error(f"{path} is not valid JSON ({exc}); restore it from the template ({template_hint}).") from None


# -- ports and processes ---------------------------------------------------------------------


def claim_port(port: int, *, what: str, error: ErrorClass, why: str = "") -> int:
    """``port``, or a free one for 0; a taken port raises ``error`` (``why``: what would happen there)."""
    if port == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            return s.getsockname()[1]
    if not 0 < port < 65536:
        raise error(f"port {port} is not a TCP port; use 1-65535, or 0 for any free port.")
    if port_in_use(port):
        raise error(f"port {port} on {HOST} is already in use, so {what} cannot start there{why}. Stop what "
                    f"listens on port {port}, or choose another port (e.g. --port {port + 1}, or --port 0 for any "
                    "free one).")
    return port


def port_in_use(port: int) -> bool:
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


def start_in_session(command: list[str], *, cwd: Path, env: dict[str, str] | None, log_path: Path,
                     banner: str) -> tuple[subprocess.Popen[bytes], Any]:
    """Start ``command`` with its output appended to ``log_path`` after a start line; returns (process, open log).

    Its own session: Ctrl-C in a terminal reaches us, and we stop the server cleanly.
    """
    log = open(log_path, "ab")
    log.write(f"{START_BANNER} {banner} at {time.ctime()}\n".encode())
    log.flush()
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    except BaseException:
        log.close()
        raise
    return process, log


def wait_until(ready: Callable[[], bool], deadline: float, *, failed: Callable[[], str | None],
               late: Callable[[], str], error: ErrorClass, poll: float = 0.25) -> None:
    """Poll ``ready`` until it is true; ``failed`` (a process died: its message) or the deadline (``late``) raise ``error``."""
    while True:
        problem = failed()
        if problem:
            raise error(problem)
        try:
            if ready():
                return
        except OSError:  # not listening yet
            pass
        if time.monotonic() > deadline:
            raise error(late())
        time.sleep(poll)


def stop_processes(processes: Iterable[subprocess.Popen[bytes]], timeout: float, *, sweep_group: bool = False) -> None:
    """SIGTERM to each process's group, together; SIGKILL to those still alive after ``timeout`` s.

    ``sweep_group``: SIGKILL each group afterwards anyway, for children (a worker pool's forks) that outlive their parent.
    """
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            signal_group(process, signal.SIGKILL)
            process.wait()
        if sweep_group:
            signal_group(process, signal.SIGKILL)


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # start_new_session: its group id is its pid
    except ProcessLookupError:
        pass


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class Stoppable(Protocol):
    def stop(self, timeout: float = ...) -> None: ...


_started: set[Stoppable] = set()  # servers started here and not stopped yet


def track(server: Stoppable) -> None:
    """Stop ``server`` when this process exits, unless :func:`untrack` came first."""
    _started.add(server)


def untrack(server: Stoppable) -> None:
    _started.discard(server)


@atexit.register
def _stop_leftover_servers() -> None:
    # a server lives in its own session, so nothing else stops it when this process ends
    for server in list(_started):
        server.stop(timeout=5)


# -- the server object -----------------------------------------------------------------------


class LocalServer:
    """What every local server over a persistent data dir has: the requested and actual port, its
    URL, the credentials of its data dir, and use as a context manager. A subclass sets ``error``,
    reads its login file in :meth:`_read_login` and implements ``start``, ``stop`` and ``is_running``.
    """

    error: ErrorClass = CorpusforgeError

    def __init__(self, data_dir: Path, port: int = 0, *, venv_dir: Path | None = None,
                 template_dir: Path | None = None, host: str = HOST) -> None:
        self.data_dir = Path(data_dir).absolute()
        # the address it listens on: 127.0.0.1 unless configured (annotation.label_studio.host, --host)
        self.host = host or HOST
        self.requested_port = port
        self.port: int | None = port or None
        self.venv_dir = venv_dir
        self.template_dir = template_dir
        self._login: dict[str, str] | None = None

    def _read_login(self) -> dict[str, str]:
        raise NotImplementedError

    def start(self, timeout: float = 90) -> Any:
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        raise NotImplementedError

    def is_running(self) -> bool:
        raise NotImplementedError

    @property
    def url(self) -> str:
        if self.port is None:
            raise self.error("the server has no port yet: call start() first")
        host = HOST if self.host in ("0.0.0.0", "::") else self.host  # listening everywhere: reach it locally
        return f"http://{host}:{self.port}"

    @property
    def login(self) -> dict[str, str]:
        if self._login is None:
            self._login = self._read_login()
        return self._login

    @property
    def username(self) -> str:
        return self.login["username"]

    @property
    def password(self) -> str:
        return self.login["password"]

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"running at {self.url}" if self.is_running() else "stopped"
        return f"{type(self).__name__}({str(self.data_dir)!r}, {state})"


# -- logs ------------------------------------------------------------------------------------


def log_offset_of_last_start(path: Path) -> int:
    """Where the last start's line begins in a log (0 when there is none)."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return 0
    return max(text.rfind(START_BANNER.encode()), 0)


def log_text(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def log_tail(path: Path, offset: int, lines: int = 20) -> str:
    """The last ``lines`` lines of a log after ``offset``, for an error message."""
    return "\n".join(log_text(path, offset).splitlines()[-lines:]) or "(the log is empty)"


# -- server.json -----------------------------------------------------------------------------


def write_server_file(data_dir: Path, record: dict[str, Any]) -> None:
    """``server.json`` of a server now running: at least ``url`` and ``pid``."""
    atomic_write_json(Path(data_dir) / SERVER_FILE, record)


def read_server_file(data_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((Path(data_dir) / SERVER_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return None


def read_running(data_dir: Path, answers: Callable[[str], bool]) -> dict[str, Any] | None:
    """``{"url", "pid"}`` from ``server.json``, trusted only if the pid is alive and ``answers(url)``, so a
    file left by a crash reads as "not running"."""
    try:
        info = read_server_file(data_dir)
        pid, url = int(info["pid"]), str(info["url"])  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        return None
    if not pid_alive(pid) or not answers(url):
        return None
    return {"url": url, "pid": pid}


def remove_server_file(data_dir: Path, pid: int | None) -> None:
    """Remove ``server.json`` if it records ``pid`` (a newer server's file stays)."""
    info = read_server_file(data_dir)
    if pid is not None and info is not None and info.get("pid") == pid:
        (Path(data_dir) / SERVER_FILE).unlink(missing_ok=True)


# -- HTTP ------------------------------------------------------------------------------------

# local servers only: never through an HTTP proxy from the environment
opener = build_opener(ProxyHandler({}))


def answers_ok(url: str, timeout: float = 2) -> bool:
    """``GET url`` answers 200 (without auth)."""
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # URLError, refused, reset, timeout
        return False
