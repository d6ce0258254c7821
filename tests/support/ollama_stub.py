#!/usr/bin/env python3
"""Minimal fake of the Ollama HTTP API, for testing real clients offline.

Stdlib only; listens on 127.0.0.1. The first stdout line names the base URL.

  POST /api/chat     one JSON object, or NDJSON chunks (chunked) when "stream" is true or
                     absent (Ollama's default); the last chunk has "done": true, done_reason and
                     prompt_eval_count / eval_count
  GET  /api/tags     the installed models (``--model``, repeatable)
  GET  /api/version, GET / ("Ollama is running")
  /_stub/fault, /_stub/requests   fault queue and request log (see stub_common.py)

Replies: ``--reply`` text (``{prompt}`` = last user text), or the next ``--tool-call``
(``{"name": ..., "input": {...}}``) as ``message.tool_calls`` (arguments as an object) when
the request offers that tool, counted from the history (no state). Unknown models (not in
``--model``) get Ollama's 404 "model ... not found, try pulling it first".

Faults (header ``X-Stub-Fault`` or the queue), as ``{"error": "..."}``: 429 (Retry-After: 1),
529, 503 ("server busy", Retry-After: 1), 502, 500, 401, 403, ``model``, ``truncate``
(done_reason length), ``drop`` (stream cut off after one chunk / no answer),
``midstream-error`` (an ``{"error": ...}`` line), ``slow`` (0.2 s per chunk).

Run:  python3 ollama_stub.py --port 0
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
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

ERRORS = {
    "429": (429, "too many requests"),
    "529": (529, "model is overloaded"),
    "503": (503, "server busy, please try again.  maximum pending requests exceeded"),
    "502": (502, "bad gateway"),
    "500": (500, "an error was encountered while running the model"),
    "401": (401, "unauthorized"),
    "403": (403, "forbidden"),
}


def now():
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-stub/0.1"

    def log_message(self, fmt, *args):
        if self.server.cfg.verbose:
            sys.stderr.write("stub: " + fmt % args + "\n")

    def fail(self, status, message, headers=None):
        send_json(self, status, {"error": message}, headers)

    def missing_model(self, model):
        self.fail(404, f'model "{model}" not found, try pulling it first')

    def fault_response(self, fault, body):
        if fault in ERRORS:
            status, message = ERRORS[fault]
            self.fail(status, message, retry_headers(fault))
            return True
        if fault == "model":
            self.missing_model((body or {}).get("model") or "?")
            return True
        return False

    # ----------------------------------------------------------------- routes
    def do_DELETE(self):
        if not handle_control(self, self.server.state):
            self.fail(404, "404 page not found")

    def do_HEAD(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        if handle_control(self, self.server.state):
            return
        state = self.server.state
        state.record(self, None)
        path = self.path.split("?")[0]
        if path == "/":
            data = b"Ollama is running"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if path == "/api/version":
            send_json(self, 200, {"version": "0.0.0-stub"})
            return
        if path != "/api/tags":
            self.fail(404, "404 page not found")
            return
        fault = state.take_fault(self.headers)
        if fault and self.fault_response(fault, None):
            return
        send_json(self, 200, {"models": [
            {"name": m, "model": m, "modified_at": "2025-01-01T00:00:00Z", "size": 2019393189,
             "digest": f"{i:064x}", "details": {"parent_model": "", "format": "gguf", "family": "llama",
                                               "families": ["llama"], "parameter_size": "3.2B",
                                               "quantization_level": "Q4_K_M"}}
            for i, m in enumerate(self.server.cfg.models)]})

    def do_POST(self):
        if handle_control(self, self.server.state):
            return
        state = self.server.state
        body = read_json(self)
        state.record(self, body)
        if self.path.split("?")[0] != "/api/chat":
            self.fail(404, "404 page not found")
            return
        fault = state.take_fault(self.headers)
        if fault and self.fault_response(fault, body):
            return
        model = body.get("model")
        if not model:
            self.fail(400, "model is required")
            return
        if model not in self.server.cfg.models:
            self.missing_model(model)
            return
        cfg = self.server.cfg
        text, call = plan_reply(body, cfg.tool_calls, cfg.reply)
        done_reason = "stop"
        if fault == "truncate":
            text, call, done_reason = ("cut off: " + text)[:24], None, "length"
        tool_calls = [{"function": {"name": call["name"], "arguments": call.get("input") or {}}}] if call else []
        stats = {"total_duration": 123456789, "load_duration": 1234567,
                 "prompt_eval_count": token_count(body.get("messages")), "prompt_eval_duration": 2345678,
                 "eval_count": token_count([text, tool_calls]), "eval_duration": 3456789}
        stream = body.get("stream", True)
        if fault == "drop" and not stream:
            drop_connection(self)
            return
        if not stream:
            message = {"role": "assistant", "content": text}
            if tool_calls:
                message["tool_calls"] = tool_calls
            send_json(self, 200, {"model": model, "created_at": now(), "message": message,
                                  "done_reason": done_reason, "done": True, **stats})
            return
        out = Chunked(self, 200, "application/x-ndjson", delay=0.2 if fault == "slow" else 0.0)

        def line(obj):
            out.write(json.dumps(obj) + "\n")

        def piece(content, **extra):
            line({"model": model, "created_at": now(),
                  "message": {"role": "assistant", "content": content, **extra}, "done": False})

        if fault in ("drop", "midstream-error"):
            piece("partial ")
            if fault == "drop":
                out.drop()
                return
            line({"error": "an error was encountered while running the model: model is overloaded"})
            out.end()
            return
        for j in range(0, len(text), 8):
            piece(text[j:j + 8])
        if tool_calls:
            piece("", tool_calls=tool_calls)
        line({"model": model, "created_at": now(), "message": {"role": "assistant", "content": ""},
              "done_reason": done_reason, "done": True, **stats})
        out.end()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=11435, help="0 picks a free port")
    ap.add_argument("--reply", default="hi from ollama stub")
    ap.add_argument("--tool-call", action="append", default=[], dest="tool_calls")
    ap.add_argument("--model", action="append", default=[], dest="models",
                    help="an installed model (repeatable; default llama3.2:latest and qwen3:8b)")
    ap.add_argument("--verbose", action="store_true")
    cfg = ap.parse_args(argv)
    cfg.tool_calls = [json.loads(t) for t in cfg.tool_calls]
    cfg.models = cfg.models or ["llama3.2:latest", "qwen3:8b"]
    srv = ThreadingHTTPServer(("127.0.0.1", cfg.port), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    srv.state = StubState()
    print(f"ollama stub listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
