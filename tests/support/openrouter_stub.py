#!/usr/bin/env python3
"""Minimal fake of OpenRouter's OpenAI-compatible API, for testing real clients offline.

Stdlib only; listens on 127.0.0.1. The first stdout line names the base URL
(``http://127.0.0.1:PORT/api/v1``).

  POST /api/v1/chat/completions   JSON reply, or SSE (chunked, ``data:`` lines, ``[DONE]``)
                                  when "stream": true; bearer auth required (401 otherwise)
  GET  /api/v1/models             three models, one of them without "tools" support
  /_stub/fault, /_stub/requests   fault queue and request log (see stub_common.py)

Replies: ``--reply`` text (``{prompt}`` = last user text), or the next ``--tool-call``
(``{"name": ..., "input": {...}}``, repeatable) as ``tool_calls`` when the request offers that
tool; which one is next is counted from the history, so the stub keeps no state. Streamed tool
calls arrive as an id/name delta and two argument fragments. ``usage`` carries ``cost`` only
when the request asked for ``usage: {"include": true}``.

Faults (header ``X-Stub-Fault`` or the queue), in OpenRouter's error shape
``{"error": {"code": N, "message": ...}}``: 429 (Retry-After: 1), 529, 503, 502, 500, 401, 403,
``model`` (400 "... is not a valid model ID"), ``truncate`` (finish_reason length), ``drop``
(stream cut off after one delta / no answer), ``midstream-error`` (an error chunk with
finish_reason "error"), ``slow`` (0.2 s per chunk).

Run:  python3 openrouter_stub.py --port 0
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from stub_common import (  # noqa: E402
    Chunked,
    StubState,
    drop_connection,
    handle_control,
    plan_reply,
    read_json,
    retry_headers,
    send_json,
    token_count,
)

_ids = itertools.count(1)
ERRORS = {
    "429": (429, "Rate limit exceeded: free-models-per-min"),
    "529": (529, "Provider returned error: overloaded"),
    "503": (503, "No available providers: all are overloaded"),
    "502": (502, "Provider returned error"),
    "500": (500, "Internal Server Error"),
    "401": (401, "No auth credentials found"),
    "403": (403, "This key is not allowed to use this model"),
}
MODELS = [
    {"id": "stub/tool-model", "name": "Stub: tool model", "context_length": 8192,
     "pricing": {"prompt": "0.000001", "completion": "0.000002"},
     "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice"]},
    {"id": "stub/plain-model", "name": "Stub: plain model", "context_length": 4096,
     "pricing": {"prompt": "0", "completion": "0"},
     "supported_parameters": ["max_tokens", "temperature"]},
    {"id": "anthropic/claude-stub", "name": "Stub: Claude via OpenRouter", "context_length": 200000,
     "pricing": {"prompt": "0.000003", "completion": "0.000015"},
     "supported_parameters": ["max_tokens", "tools", "tool_choice"]},
]


def new_id(prefix):
    return f"{prefix}-stub{next(_ids):06d}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "openrouter-stub/0.1"

    def log_message(self, fmt, *args):
        if self.server.cfg.verbose:
            sys.stderr.write("stub: " + fmt % args + "\n")

    def fail(self, status, message, headers=None):
        send_json(self, status, {"error": {"code": status, "message": message}}, headers)

    def authorised(self):
        auth = self.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            self.fail(401, "No auth credentials found")
            return False
        return True

    def fault_response(self, fault, body):
        if fault in ERRORS:
            status, message = ERRORS[fault]
            self.fail(status, message, retry_headers(fault))
            return True
        if fault == "model":
            self.fail(400, "%s is not a valid model ID" % ((body or {}).get("model") or "?"))
            return True
        return False

    # ----------------------------------------------------------------- routes
    def do_DELETE(self):
        if not handle_control(self, self.server.state):
            self.fail(404, "Not Found")

    def do_GET(self):
        if handle_control(self, self.server.state):
            return
        state = self.server.state
        state.record(self, None)
        path = self.path.split("?")[0].rstrip("/")
        if path != "/api/v1/models":
            self.fail(404, "Not Found")
            return
        fault = state.take_fault(self.headers)
        if fault and self.fault_response(fault, None):
            return
        send_json(self, 200, {"data": MODELS})

    def do_POST(self):
        if handle_control(self, self.server.state):
            return
        state = self.server.state
        body = read_json(self)
        state.record(self, body)
        path = self.path.split("?")[0].rstrip("/")
        if path != "/api/v1/chat/completions":
            self.fail(404, "Not Found")
            return
        if not self.authorised():
            return
        fault = state.take_fault(self.headers)
        if fault and self.fault_response(fault, body):
            return
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            self.fail(400, "Input required: specify \"messages\" and \"model\"")
            return
        cfg = self.server.cfg
        text, call = plan_reply(body, cfg.tool_calls, cfg.reply)
        finish = "tool_calls" if call else "stop"
        if fault == "truncate":
            text, call, finish = ("cut off: " + text)[:24], None, "length"
        tool_calls = []
        if call:
            tool_calls = [{"id": new_id("call"), "type": "function",
                           "function": {"name": call["name"], "arguments": json.dumps(call.get("input") or {})}}]
        usage = self.usage(body, text, tool_calls)
        if fault == "drop" and not body.get("stream"):
            drop_connection(self)
            return
        if body.get("stream"):
            self.stream(body, text, tool_calls, finish, usage, fault)
            return
        send_json(self, 200, {
            "id": new_id("gen"), "provider": "Stub", "model": body["model"], "object": "chat.completion",
            "created": int(time.time()),
            "choices": [{"logprobs": None, "finish_reason": finish, "native_finish_reason": finish, "index": 0,
                         "message": {"role": "assistant", "content": text if (text or not tool_calls) else None,
                                     "refusal": None, "reasoning": None,
                                     **({"tool_calls": tool_calls} if tool_calls else {})}}],
            "usage": usage})

    def usage(self, body, text, tool_calls):
        n_in = token_count(body.get("messages"))
        n_out = token_count([text, tool_calls])
        usage = {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out,
                 "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
        if (body.get("usage") or {}).get("include"):
            usage["cost"] = round(n_in * 1e-6 + n_out * 2e-6, 9)
        return usage

    # -------------------------------------------------------------------- SSE
    def stream(self, body, text, tool_calls, finish, usage, fault):
        out = Chunked(self, 200, "text/event-stream", delay=0.2 if fault == "slow" else 0.0)
        gen_id, created = new_id("gen"), int(time.time())

        def chunk(delta, finish_reason=None, **extra):
            data = {"id": gen_id, "provider": "Stub", "model": body["model"], "object": "chat.completion.chunk",
                    "created": created, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason,
                                                     "native_finish_reason": finish_reason, "logprobs": None}]}
            data.update(extra)
            out.write(f"data: {json.dumps(data)}\n\n")

        out.write(": OPENROUTER PROCESSING\n\n")
        if fault in ("drop", "midstream-error"):
            chunk({"role": "assistant", "content": "partial "})
            if fault == "drop":
                out.drop()
                return
            chunk({"content": ""}, "error",
                  error={"code": "server_error", "message": "Provider returned error: overloaded"})
            out.write("data: [DONE]\n\n")
            out.end()
            return
        chunk({"role": "assistant", "content": ""})
        for j in range(0, len(text), 8):
            chunk({"content": text[j:j + 8]})
        for i, tc in enumerate(tool_calls):
            chunk({"tool_calls": [{"index": i, "id": tc["id"], "type": "function",
                                   "function": {"name": tc["function"]["name"], "arguments": ""}}]})
            raw = tc["function"]["arguments"]
            half = len(raw) // 2
            for part in (raw[:half], raw[half:]):
                chunk({"tool_calls": [{"index": i, "function": {"arguments": part}}]})
        chunk({}, finish)
        data = {"id": gen_id, "provider": "Stub", "model": body["model"], "object": "chat.completion.chunk",
                "created": created, "choices": [], "usage": usage}
        out.write(f"data: {json.dumps(data)}\n\n")
        out.write("data: [DONE]\n\n")
        out.end()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8766, help="0 picks a free port")
    ap.add_argument("--reply", default="hi from openrouter stub")
    ap.add_argument("--tool-call", action="append", default=[], dest="tool_calls")
    ap.add_argument("--verbose", action="store_true")
    cfg = ap.parse_args(argv)
    cfg.tool_calls = [json.loads(t) for t in cfg.tool_calls]
    srv = ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    srv.state = StubState()
    print(f"openrouter stub listening on http://127.0.0.1:{srv.server_address[1]}/api/v1", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
