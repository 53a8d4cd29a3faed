"""Translation through an OpenAI-compatible chat completions server (vLLM, llama.cpp, OpenAI...).

Each request is one ``POST <base_url>/v1/chat/completions`` with the instruction of
:func:`~.base.build_prompt` as a single user message, ``temperature`` 0 and the given ``model``;
the answer's ``choices[0].message.content`` (stripped) is the translation, ``None``/empty content
included (``translate_all`` records those as failures). Requests of a batch run concurrently
(``concurrency`` threads, answers in request order). ``base_url`` may end in ``/v1`` or not.

Errors: 5xx, 429, timeouts and refused connections are retried ``max_retries`` times with
exponential backoff (``backoff`` seconds, doubled each time); then a server that was never reached
raises :class:`~.base.BackendUnreachableError` naming the URL, any other persistent failure
:class:`~.base.BackendError` naming the URL and the last status. Other 4xx answers (bad key,
unknown model) raise at once. Messages never contain the API key: it is read from the environment
variable ``api_key_env`` at each request (sent as ``Authorization: Bearer``), never stored on the
object, and replaced by ``***`` wherever a server echoes it.

``model_version``: the model id the endpoint reports in ``GET /v1/models`` (with its ``root`` when
the server gives one, as vLLM does: the weights it serves), or ``model_version=`` when given; the
requested name when the server lists no such model. A fingerprint of the prompt template and
``max_tokens`` is appended. It is looked up on first use, so constructing the backend makes no
request. Servers that alias a name to changing snapshots are not detected: pin a snapshot name or
pass ``model_version``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .base import (
    LANGUAGE_NAMES,
    PROMPT_TEMPLATE,
    BackendError,
    BackendUnreachableError,
    TranslationRequest,
    build_prompt,
    check_languages,
    fingerprint_settings,
)

if TYPE_CHECKING:  # requests is imported on first use: the local backends' machines may not have it
    from requests import Response, Session

_RETRY_STATUSES = frozenset({408, 409, 425, 429})  # plus every 5xx
_SNIPPET = 300


class HttpBackend:
    """Translation by an OpenAI-compatible ``/v1/chat/completions`` endpoint (see the module docstring)."""

    name = "http"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "CORPUSFORGE_TRANSLATION_API_KEY",
        timeout: float = 60.0,
        max_retries: int = 2,
        concurrency: int = 4,
        prompt_template: str = PROMPT_TEMPLATE,
        max_tokens: int | None = None,
        backoff: float = 1.0,
        model_version: str | None = None,
    ) -> None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        if max_retries < 0 or concurrency < 1 or timeout <= 0:
            raise ValueError("max_retries must be >= 0, concurrency >= 1 and timeout > 0")
        for field in ("{source}", "{target}", "{text}"):
            if field not in prompt_template:
                raise ValueError(f"prompt_template must contain {field}")
        root = base_url.rstrip("/")
        v1 = root if root.endswith("/v1") else root + "/v1"
        self.base_url = root
        self.url = v1 + "/chat/completions"
        self.models_url = v1 + "/models"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.max_retries = max_retries
        self.concurrency = concurrency
        self.prompt_template = prompt_template
        self.max_tokens = max_tokens
        self.backoff = backoff
        self._settings = fingerprint_settings({"prompt_template": prompt_template, "max_tokens": max_tokens})
        self._declared_version = model_version
        self._model_version: str | None = None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r}, model={self.model!r})"

    @property
    def model_version(self) -> str:
        if self._model_version is None:
            base = self._declared_version or self._reported_model_id()
            self._model_version = f"{base}-{self._settings}"
        return self._model_version

    def translate_batch(self, requests: Sequence[TranslationRequest]) -> list[str | None]:
        """One output per request, in order; requests run ``concurrency`` at a time."""
        check_languages(requests, LANGUAGE_NAMES, "http")
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = [pool.submit(self._translate_one, request) for request in requests]
            try:
                return [future.result() for future in futures]
            except BaseException:
                for future in futures:
                    future.cancel()  # do not start the rest; running ones finish before we leave
                raise

    # ----------------------------------------------------------------------- internals

    def _translate_one(self, request: TranslationRequest) -> str | None:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": build_prompt(request, self.prompt_template)}],
            "temperature": 0,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        response = self._send("POST", self.url, body)
        try:
            content = response.json()["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise BackendError(
                self._redact(f"{self.url} answered without choices[0].message: {response.text[:_SNIPPET]!r}")
            ) from None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
        if content is not None and not isinstance(content, str):
            raise BackendError(f"{self.url} answered with a {type(content).__name__} as message content")
        return content.strip() if content is not None else None

    def _reported_model_id(self) -> str:
        response = self._send("GET", self.models_url, None, missing_ok=True)
        if response is None:
            return self.model  # the server does not list models
        try:
            listed = response.json().get("data", [])
        except (ValueError, AttributeError):
            return self.model
        for entry in listed if isinstance(listed, list) else []:
            if isinstance(entry, dict) and entry.get("id") == self.model:
                root = entry.get("root")
                return f"{self.model}@{root}" if isinstance(root, str) and root and root != self.model else self.model
        return self.model

    def _session(self) -> Session:
        session = getattr(self._local, "session", None)
        if session is None:  # a requests Session is not thread-safe: one per thread
            from requests import Session

            session = self._local.session = Session()
        return session

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _redact(self, text: str) -> str:
        key = os.environ.get(self.api_key_env)
        return text.replace(key, "***") if key else text

    def _send(self, method: str, url: str, body: dict[str, Any] | None, *, missing_ok: bool = False) -> Response | None:
        from requests import exceptions as request_errors

        attempts = self.max_retries + 1
        problem = ""
        never_reached = True
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._session().request(
                    method, url, json=body, headers=self._headers(), timeout=self.timeout
                )
            except request_errors.ConnectionError as error:  # refused, DNS, connect timeout
                problem = f"connection failed ({_short(error)})"
                continue
            except request_errors.Timeout:
                never_reached = False
                problem = f"no answer within {self.timeout:g} s"
                continue
            except request_errors.RequestException as error:
                raise BackendError(self._redact(f"request to {url} failed: {_short(error)}")) from None
            never_reached = False
            status = response.status_code
            if missing_ok and status in (404, 405, 501):  # the server has no such route
                return None
            if status >= 500 or status in _RETRY_STATUSES:
                problem = f"HTTP {status}: {response.text[:_SNIPPET]!r}"
                continue
            if status >= 400:
                raise BackendError(self._redact(f"{url} answered HTTP {status}: {response.text[:_SNIPPET]!r}"))
            return response
        if never_reached:
            raise BackendUnreachableError(
                self._redact(
                    f"cannot reach the translation server at {url} ({attempts} attempts): {problem}. "
                    "Is the server running, and is base_url right?"
                )
            )
        raise BackendError(self._redact(f"{url} failed {attempts} times; last: {problem}"))


def _short(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= _SNIPPET else text[:_SNIPPET] + "..."
