"""httpx plumbing shared by the OpenAI-compatible and Ollama providers."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from loom_core.agents.providers.base import error_for_message, error_for_status
from loom_core.errors import ProviderAborted, ProviderError, ProviderNetworkError


def make_client(timeout: float) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), follow_redirects=False)


def network_error(provider: str, exc: BaseException) -> ProviderNetworkError:
    if isinstance(exc, httpx.TimeoutException):
        what = "request timed out"
    elif isinstance(exc, httpx.ConnectError):
        what = "connection failed"
    else:
        what = "connection lost"
    return ProviderNetworkError(f"{provider}: {what}: {exc or type(exc).__name__}", provider=provider)


def error_text(response: httpx.Response) -> str:
    """The human message of an error body: ``error.message`` / ``error`` / the raw text."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    return message_of(data) or response.text.strip()


def message_of(data: Any) -> str:
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str):
        return err
    if isinstance(err, dict):
        msg = str(err.get("message") or err.get("type") or "")
        raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
        return f"{msg} ({raw})" if raw and str(raw) not in msg else msg
    return ""


def embedded_error(provider: str, data: Any) -> ProviderError | None:
    """An ``{"error": ...}`` carried by a 200 body or a stream chunk."""
    if not isinstance(data, dict) or not data.get("error"):
        return None
    err = data["error"]
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) else None
    return error_for_message(provider, message_of(data), status=status)


def request_json(provider: str, client: httpx.Client, method: str, url: str, **kw: Any) -> Any:
    try:
        response = client.request(method, url, **kw)
    except httpx.TransportError as exc:
        raise network_error(provider, exc) from exc
    if response.status_code >= 400:
        raise error_for_status(provider, response.status_code, error_text(response), response.headers)
    try:
        data = response.json()
    except ValueError as exc:
        raise ProviderError(f"{provider}: the reply is not JSON: {response.text[:200]!r}",
                            provider=provider, status=response.status_code) from exc
    err = embedded_error(provider, data)
    if err is not None:
        raise err
    return data


@contextmanager
def stream_lines(provider: str, client: httpx.Client, url: str, *, json_body: dict, headers: dict,
                 cancel: threading.Event | None) -> Iterator[Iterator[str]]:
    """POST and yield an iterator over the reply's lines; HTTP errors, transport errors and the
    cancel token are turned into typed errors (also when they strike mid-stream)."""
    try:
        with client.stream("POST", url, json=json_body, headers=headers) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for_status(provider, response.status_code, error_text(response), response.headers)

            def lines() -> Iterator[str]:
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        raise ProviderAborted(f"{provider}: cancelled mid-reply", provider=provider)
                    yield line

            yield lines()
    except httpx.TransportError as exc:
        raise network_error(provider, exc) from exc
    except httpx.StreamError as exc:
        raise network_error(provider, exc) from exc


def parse_json_line(provider: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ProviderError(f"{provider}: unreadable stream chunk: {text[:200]!r}", provider=provider) from exc


def emit(on_text: Callable[[str], None] | None, text: str) -> None:
    if on_text is not None and text:
        on_text(text)
