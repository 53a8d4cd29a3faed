"""A tiny OpenAI-compatible server for tests: real HTTP on 127.0.0.1, deterministic answers.

``POST /v1/chat/completions`` reads the last user message, which must follow the translation
prompt ("Translate the following text from <Source> to <Target>. Reply with the translation
only.<blank line><text>"), and answers with :func:`fake_translation`: ``"<Target>| "`` + the text
reversed, which :func:`undo_fake_translation` inverts. ``GET /v1/models`` lists :attr:`OpenAIStub.model_id`
(with :attr:`OpenAIStub.root`, like vLLM).

Faults are asked for by markers in the text to translate, so that concurrent requests stay
independent (counts are per distinct text):

=========================  ====================================================================
``[[empty]]``              content ""
``[[null]]``               content null
``[[english]]``            the source text unchanged (a "translation" in the wrong language)
``[[status=500]]``         HTTP 500 every time; ``[[status=500 times=2]]``: the first 2 times only
``[[slow=0.5 times=1]]``   wait 0.5 s before answering, the first time only (no times: always)
``[[echo_auth]]``          HTTP 401 whose body repeats the Authorization header it received
=========================  ====================================================================

Every request is logged (:attr:`OpenAIStub.log`: method, path, JSON body, Authorization header).

In a test::

    with OpenAIStub() as stub:
        backend = HttpBackend(stub.url, stub.model_id)

From a shell: ``python -m tests.pipelines.polyrefuse.openai_stub --port 8000``.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PROMPT = re.compile(
    r"\ATranslate the following text from (?P<source>.+?) to (?P<target>.+?)\. "
    r"Reply with the translation only\.\n\n(?P<text>.*)\Z",
    re.DOTALL,
)
STATUS = re.compile(r"\[\[status=(\d{3})(?: times=(\d+))?\]\]")
SLOW = re.compile(r"\[\[slow=([0-9.]+)(?: times=(\d+))?\]\]")


def fake_translation(text: str, target: str) -> str:
    """The stub's "translation": the target language's name, a bar, and the text reversed."""
    return f"{target}| {text[::-1]}"


def undo_fake_translation(output: str) -> tuple[str, str]:
    """(target language name, original text) of a :func:`fake_translation`."""
    target, _, reversed_text = output.partition("| ")
    return target, reversed_text[::-1]


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    body: Any
    authorization: str | None


class OpenAIStub:
    """The server, started in a daemon thread on a free port; stop it with :meth:`close`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, model_id: str = "stub-translator") -> None:
        self.model_id = model_id
        self.root = "/models/stub-translator-v1"  # change it to simulate another model being served
        self.log: list[LoggedRequest] = []
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                stub._record(self, None)
                if self.path.rstrip("/") == "/v1/models":
                    entry = {"id": stub.model_id, "object": "model", "owned_by": "stub", "root": stub.root}
                    self._send(200, {"object": "list", "data": [entry]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    stub._record(self, raw.decode("utf-8", "replace"))
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                stub._record(self, body)
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                status, payload = stub._complete(body, self.headers.get("Authorization"))
                self._send(status, payload)

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        # A client that timed out leaves a broken pipe behind: expected here, not worth a traceback.
        self._server.handle_error = lambda request, client_address: None
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
        )
        self._thread.start()

    def _record(self, handler: BaseHTTPRequestHandler, body: Any) -> None:
        entry = LoggedRequest(handler.command, handler.path, body, handler.headers.get("Authorization"))
        with self._lock:
            self.log.append(entry)

    def completions(self) -> list[LoggedRequest]:
        with self._lock:
            return [entry for entry in self.log if entry.path == "/v1/chat/completions"]

    def _complete(self, body: Any, authorization: str | None) -> tuple[int, Any]:
        try:
            message = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        except (TypeError, KeyError, IndexError):
            return 400, {"error": {"message": "expected messages with a user turn"}}
        match = PROMPT.match(message)
        if match is None:
            return 400, {"error": {"message": "not a translation prompt"}}
        text, target = match["text"], match["target"]
        with self._lock:
            self._seen[text] += 1
            seen = self._seen[text]

        if "[[echo_auth]]" in text:
            return 401, {"error": {"message": f"invalid credentials: {authorization}"}}
        if (status := STATUS.search(text)) and (status[2] is None or seen <= int(status[2])):
            return int(status[1]), {"error": {"message": "simulated failure"}}
        if (slow := SLOW.search(text)) and (slow[2] is None or seen <= int(slow[2])):
            time.sleep(float(slow[1]))
        if "[[empty]]" in text:
            content: str | None = ""
        elif "[[null]]" in text:
            content = None
        elif "[[english]]" in text:
            content = text
        else:
            content = fake_translation(text, target)
        return 200, {
            "id": f"chatcmpl-{seen}",
            "object": "chat.completion",
            "model": self.model_id,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the OpenAI-compatible test stub in the foreground.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="stub-translator")
    args = parser.parse_args()
    stub = OpenAIStub(port=args.port, model_id=args.model)
    print(f"serving {stub.url}/v1 (model {stub.model_id}); Ctrl-C stops", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.close()


if __name__ == "__main__":
    main()
