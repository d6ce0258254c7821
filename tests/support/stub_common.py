"""Shared plumbing for the provider stub servers (stdlib only).

Scripted faults, chosen per request:

* the request header ``X-Stub-Fault: <fault>`` (wins), or
* a queue filled through the control endpoint ``POST /_stub/fault`` with
  ``{"fault": "<fault>", "times": 1}``; each API request (not control requests) takes one.
  ``DELETE /_stub/fault`` empties the queue.

Faults: ``429`` (with ``Retry-After: 1``), ``529``, ``503``, ``502``, ``500``, ``401``, ``403``,
``model`` (unknown model), ``drop`` (a streamed reply is cut off half way and the socket closed;
a plain reply gets no answer at all), ``truncate`` (the reply stops at the token limit),
``slow`` (a pause before each streamed chunk, for cancel tests), ``midstream-error`` (a streamed
reply starts, then carries an "overloaded" error event instead of finishing).

Every API request is recorded in memory: ``GET /_stub/requests`` returns them (method, path,
headers with credentials masked, parsed body); ``DELETE /_stub/requests`` clears the list.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque

FAULTS = {"429", "529", "503", "502", "500", "401", "403", "model", "drop", "truncate", "slow",
          "midstream-error"}
MASKED = ("authorization", "x-api-key")


class StubState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queue: deque[str] = deque()
        self.requests: list[dict] = []

    def take_fault(self, headers) -> str | None:
        fault = headers.get("X-Stub-Fault")
        if fault:
            return fault.strip()
        with self.lock:
            return self.queue.popleft() if self.queue else None

    def record(self, handler, body) -> None:
        headers = {}
        for k, v in handler.headers.items():
            if k.lower() in MASKED:
                v = v[:4] + "..." if len(v) > 8 else v
            headers[k.lower()] = v
        with self.lock:
            self.requests.append({"t": time.time(), "method": handler.command, "path": handler.path,
                                  "headers": headers, "body": body})


def read_json(handler):
    length = int(handler.headers.get("Content-Length") or 0)
    raw = handler.rfile.read(length) if length else b""
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        return {"_unparsed": raw.decode("utf-8", "replace")}


def send_json(handler, status: int, obj, headers: dict | None = None) -> None:
    data = json.dumps(obj).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.end_headers()
    handler.wfile.write(data)


def handle_control(handler, state: StubState) -> bool:
    """Serve ``/_stub/*``; return False when the path is not a control path."""
    path = handler.path.split("?")[0]
    if not path.startswith("/_stub/"):
        return False
    body = read_json(handler) if handler.command == "POST" else None
    if path == "/_stub/fault":
        if handler.command == "POST":
            fault = str(body.get("fault", ""))
            if fault not in FAULTS:
                send_json(handler, 400, {"error": f"unknown fault {fault!r}", "known": sorted(FAULTS)})
                return True
            with state.lock:
                state.queue.extend([fault] * int(body.get("times", 1)))
        elif handler.command == "DELETE":
            with state.lock:
                state.queue.clear()
        with state.lock:
            send_json(handler, 200, {"queue": list(state.queue)})
    elif path == "/_stub/requests":
        if handler.command == "DELETE":
            with state.lock:
                state.requests.clear()
        with state.lock:
            send_json(handler, 200, {"requests": list(state.requests)})
    else:
        send_json(handler, 404, {"error": f"no control endpoint {path}"})
    return True


def retry_headers(fault: str) -> dict:
    return {"Retry-After": "1"} if fault in ("429", "529", "503") else {}


class Chunked:
    """Write a ``Transfer-Encoding: chunked`` body; ``drop()`` cuts it off like a dead peer."""

    def __init__(self, handler, status: int, content_type: str, *, delay: float = 0.0) -> None:
        self.h = handler
        self.delay = delay
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()

    def write(self, text: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        data = text.encode()
        self.h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.h.wfile.flush()

    def end(self) -> None:
        self.h.wfile.write(b"0\r\n\r\n")
        self.h.wfile.flush()

    def drop(self) -> None:
        """Close the socket without the final chunk: the client sees an incomplete body."""
        drop_connection(self.h)


def drop_connection(handler) -> None:
    try:
        handler.wfile.flush()
    except OSError:
        pass
    handler.close_connection = True
    try:
        handler.connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ------------------------------------------------------------- replies for OpenAI-style histories

def offered_tools(body) -> set:
    names = set()
    for t in body.get("tools") or []:
        if isinstance(t, dict):
            names.add((t.get("function") or {}).get("name") or t.get("name"))
    return names


def last_user_text(messages) -> str:
    for msg in reversed(messages or []):
        if msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
            if texts:
                return texts[-1]
    return ""


def plan_reply(body, tool_calls, reply):
    """(text, tool call or None) for an OpenAI-style/Ollama request, stateless like the Anthropic
    stub: the next scripted tool call is picked by counting the tool-calling assistant turns
    already in the history, and only made when the request offers that tool."""
    messages = body.get("messages") or []
    done = sum(1 for m in messages if m.get("role") == "assistant" and m.get("tool_calls"))
    if done < len(tool_calls) and tool_calls[done]["name"] in offered_tools(body):
        return "", tool_calls[done]
    return reply.replace("{prompt}", last_user_text(messages)), None


def token_count(obj) -> int:
    return max(1, len(json.dumps(obj)) // 4)
