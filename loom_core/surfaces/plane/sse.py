"""``GET /projects/{id}/log`` (spec §5.3): a server-sent event stream, one unnamed message at once and
then every 2 s: ``data: {"status": <read model>, "log": [last 60 lines], "supervised": bool}``.

The log is the project's supervisor log (``.loom/daemon/log.jsonl``) followed by this plane's own
engine events for it. A read that fails skips that tick; the stream ends when the client leaves or
the plane stops. No ids, no heartbeats: a client keeps only the latest snapshot.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import StreamingResponse

from loom_core.errors import LoomError
from loom_core.surfaces.plane.routes import control, known, registry

PERIOD_S = 2.0
LINES = 60


def snapshot(request: Request, p: Any) -> dict[str, Any]:
    lines = control(request).log_tail(p.path, LINES) + registry(request).events(p.id)
    return {"status": control(request).read_model(p.path), "log": lines[-LINES:],
            "supervised": registry(request).is_supervised(p.id)}


async def project_log(request: Request) -> StreamingResponse:
    p = await anyio.to_thread.run_sync(known, request)
    stopping = request.app.state.stopping
    period = getattr(request.app.state, "sse_period_s", PERIOD_S)

    async def stream():
        while not stopping.is_set():
            try:
                snap = await anyio.to_thread.run_sync(snapshot, request, p)
            except (LoomError, OSError):
                snap = None  # a read error skips this tick
            if snap is not None:
                yield f"data: {json.dumps(snap, default=str)}\n\n"
            waited = 0.0
            while waited < period and not stopping.is_set():  # a client that leaves cancels this sleep
                await anyio.sleep(0.1)
                waited += 0.1

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
