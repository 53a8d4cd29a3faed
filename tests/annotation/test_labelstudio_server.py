"""The local Label Studio against the real server: health, auth, ports, persistence, the command."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from annotation.backends.labelstudio.server import (
    LabelStudioError,
    LocalLabelStudio,
    ensure_template,
    find_running,
)

pytestmark = pytest.mark.slow

_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    try:
        with _direct.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except OSError:  # refused: nothing listens
        return 0, b""


def client_for(server: LocalLabelStudio):
    from label_studio_sdk import LabelStudio

    return LabelStudio(base_url=server.url, api_key=server.token, max_retries=0)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_and_token(label_studio: LocalLabelStudio) -> None:
    assert get(f"{label_studio.url}/health")[0] == 200
    status, body = get(f"{label_studio.url}/api/current-user/whoami", label_studio.token)
    assert status == 200 and json.loads(body)["email"] == label_studio.username
    assert get(f"{label_studio.url}/api/current-user/whoami", "0" * 40)[0] == 401
    assert client_for(label_studio).users.whoami().email == label_studio.username
    assert find_running(label_studio.data_dir) == {"url": label_studio.url, "pid": label_studio.pid}
    login = label_studio.data_dir / "corpusforge-login.json"
    assert login.stat().st_mode & 0o777 == 0o600
    assert len(label_studio.token) == 40 and int(label_studio.token, 16) >= 0


def test_occupied_port_fails_naming_it(label_studio: LocalLabelStudio, tmp_path: Path) -> None:
    second = LocalLabelStudio(tmp_path / "second", port=label_studio.port)
    with pytest.raises(LabelStudioError, match=rf"port {label_studio.port}\b.*in use"):
        second.start()
    assert not second.is_running()
    assert not (tmp_path / "second").exists()  # failed before copying anything


def test_restart_keeps_projects_and_sessions(tmp_path: Path) -> None:
    import requests

    data_dir = tmp_path / "ls"
    server = LocalLabelStudio(data_dir).start()
    try:
        project = client_for(server).projects.create(title="kept across restarts")
        browser = requests.Session()
        browser.trust_env = False
        browser.get(f"{server.url}/user/login/")
        assert browser.get(f"{server.url}/api/current-user/whoami").status_code in (401, 403)
        browser.post(f"{server.url}/user/login/", headers={"Referer": f"{server.url}/user/login/"},
                     data={"email": server.username, "password": server.password,
                           "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        assert browser.get(f"{server.url}/api/current-user/whoami").status_code == 200

        server.stop()
        assert not server.is_running() and find_running(data_dir) is None
        assert not (data_dir / "server.json").exists()

        server.start()
        titles = {p.id: p.title for p in client_for(server).projects.list()}
        assert titles == {project.id: "kept across restarts"}
        # SECRET_KEY is fixed per template, so a browser session outlives a restart
        assert browser.get(f"{server.url}/api/current-user/whoami").status_code == 200

        server.kill()  # a crash: server.json stays, but find_running sees through it
        assert (data_dir / "server.json").exists() and find_running(data_dir) is None
    finally:
        server.stop()


def test_serve_command_runs_until_interrupted(tmp_path: Path) -> None:
    ensure_template()  # the one-time work belongs to no deadline below
    port = free_port()
    corpusforge = Path(sys.executable).parent / "corpusforge"
    proc = subprocess.Popen(
        [str(corpusforge), "annotate", "serve", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []

    def read_until(text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in seen):
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None or time.monotonic() > deadline:
                pytest.fail(f"no {text!r} from `corpusforge annotate serve`; output:\n{''.join(seen)}")
            seen.append(line)

    try:
        url = f"http://127.0.0.1:{port}"
        read_until(f"running at {url}", timeout=120)
        assert get(f"{url}/health")[0] == 200
        assert find_running(tmp_path / "ws" / "annotation" / "label-studio")["url"] == url
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        read_until("stopped", timeout=5)
        assert get(f"{url}/health")[0] != 200
        assert not (tmp_path / "ws" / "annotation" / "label-studio" / "server.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
