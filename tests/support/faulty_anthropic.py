#!/usr/bin/env python3
"""The Anthropic stub (``anthropic_stub.py``) with scripted faults, for the official SDK.

Same options and routes as ``anthropic_stub.py``, plus the fault selectors and the
``/_stub/*`` control endpoints described in ``stub_common.py``. Faults, in the Anthropic
error shape (``{"type": "error", "error": {"type": ..., "message": ...}}``):

  429 rate_limit_error + Retry-After: 1     529 overloaded_error + Retry-After: 1
  503/502/500 api_error                     401 authentication_error, 403 permission_error
  model  404 not_found_error "model: <id>"  truncate  stop_reason max_tokens
  drop   SSE cut off after the first text delta (chunked body never finished); a JSON
         request is closed without an answer
  midstream-error  SSE carrying an ``event: error`` (overloaded_error) after one delta
  slow   0.2 s before each SSE event

Run:  python3 faulty_anthropic.py --port 0   (first stdout line: the URL)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import anthropic_stub  # noqa: E402
from stub_common import (  # noqa: E402
    Chunked,
    StubState,
    drop_connection,
    handle_control,
    retry_headers,
    send_json,
)

ERRORS = {
    "429": (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    "529": (529, "overloaded_error", "Overloaded"),
    "503": (503, "api_error", "Service unavailable"),
    "502": (502, "api_error", "Bad gateway"),
    "500": (500, "api_error", "Internal server error"),
    "401": (401, "authentication_error", "invalid x-api-key"),
    "403": (403, "permission_error", "Your API key does not have permission to use the specified resource."),
}


class FaultyHandler(anthropic_stub.Handler):
    server_version = "faulty-anthropic-stub/0.1"
    _delay = 0.0

    def record(self, body):
        super().record(body)
        self.server.state.record(self, body)

    def sse(self, event, data):
        if self._delay:
            time.sleep(self._delay)
        super().sse(event, data)

    def _fault_error(self, fault: str, body) -> bool:
        if fault in ERRORS:
            status, etype, msg = ERRORS[fault]
            send_json(self, status, {"type": "error", "error": {"type": etype, "message": msg}},
                      {"request-id": anthropic_stub.new_id("req"), **retry_headers(fault)})
            return True
        if fault == "model":
            model = (body or {}).get("model") or "?"
            send_json(self, 404, {"type": "error", "error": {"type": "not_found_error",
                                                             "message": f"model: {model}"}})
            return True
        return False

    def do_GET(self):
        if handle_control(self, self.server.state):
            return
        fault = self.server.state.take_fault(self.headers)
        if fault and self._fault_error(fault, None):
            self.record(None)
            return
        super().do_GET()

    def do_DELETE(self):
        if not handle_control(self, self.server.state):
            send_json(self, 404, {"type": "error", "error": {"type": "not_found_error", "message": "no route"}})

    def do_POST(self):
        if handle_control(self, self.server.state):
            return
        path = self.path.split("?")[0]
        if path != "/v1/messages":
            return super().do_POST()
        body = self.read_json()
        self.record(body)
        fault = self.server.state.take_fault(self.headers)
        if fault and self._fault_error(fault, body):
            return
        if not isinstance(body.get("messages"), list):
            self.error(400, "invalid_request_error", "messages: field required")
            return
        blocks, stop = anthropic_stub.plan_reply(body, self.server.cfg)
        if fault == "truncate":
            text = anthropic_stub.last_user_text(body.get("messages"))
            blocks, stop = [{"type": "text", "text": ("cut off: " + text)[:24]}], "max_tokens"
        if fault == "slow":
            self._delay = 0.2
        if fault in ("drop", "midstream-error"):
            return self._broken(body, fault)
        if body.get("stream"):
            self.stream_message(body, blocks, stop)
        else:
            self.send_json(200, {
                "id": anthropic_stub.new_id("msg"), "type": "message", "role": "assistant",
                "model": body.get("model") or self.server.cfg.model,
                "content": blocks, "stop_reason": stop, "stop_sequence": None,
                "usage": anthropic_stub.usage(body, blocks)})

    def _broken(self, body, fault):
        if not body.get("stream"):
            drop_connection(self)   # no answer at all
            return
        out = Chunked(self, 200, "text/event-stream")

        def ev(name, data):
            out.write(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        ev("message_start", {"type": "message_start", "message": {
            "id": anthropic_stub.new_id("msg"), "type": "message", "role": "assistant",
            "model": body.get("model") or self.server.cfg.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1}}})
        ev("content_block_start", {"type": "content_block_start", "index": 0,
                                   "content_block": {"type": "text", "text": ""}})
        ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                   "delta": {"type": "text_delta", "text": "partial "}})
        if fault == "midstream-error":
            ev("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
            out.end()
            self.close_connection = True
            return
        out.drop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    ap.add_argument("--reply", default="hi from stub")
    ap.add_argument("--tool-call", action="append", default=[], dest="tool_calls")
    ap.add_argument("--chunk-delay", type=float, default=0.0)
    ap.add_argument("--model", default=anthropic_stub.MODEL_DEFAULT)
    ap.add_argument("--log", default=None)
    ap.add_argument("--verbose", action="store_true")
    cfg = ap.parse_args(argv)
    cfg.tool_calls = [json.loads(t) for t in cfg.tool_calls]
    srv = ThreadingHTTPServer(("127.0.0.1", cfg.port), FaultyHandler)
    srv.daemon_threads = True
    srv.cfg = cfg
    srv.state = StubState()
    print(f"faulty anthropic stub listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
