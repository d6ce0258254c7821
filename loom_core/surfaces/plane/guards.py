"""The plane's per-request guards (spec §5.1), one pure ASGI middleware, in this order:

1. no token configured: the ``Host`` must be loopback, else 403 ``FORBIDDEN_HOST`` (DNS rebinding);
2. POST/PUT/DELETE/PATCH: an ``Origin``, if present, must be this host:port; malformed or ``null``
   → 403 ``FORBIDDEN_ORIGIN`` (CSRF); no Origin is fine (CLI, curl);
3. ``GET /health`` needs no token;
4. a token configured: ``Authorization: Bearer`` compared in constant time; ``?token=`` only on the
   SSE route; else 401 ``UNAUTHORIZED``;
5. a body is at most 1 MiB (declared or streamed) else 413 ``PAYLOAD_TOO_LARGE``; a non-empty body is
   ``application/json`` (415) holding an object (400 ``BAD_JSON``); empty = ``{}``. The parsed body
   is left in ``scope["state"]["json"]`` for the route.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.responses import JSONResponse

from loom_core.surfaces.netloc import is_loopback

MAX_BODY = 1024 * 1024
MUTATIONS = {"POST", "PUT", "DELETE", "PATCH"}
OPEN_PATHS = {"/health"}
SSE_PATH = re.compile(r"^/projects/[^/]+/log$")


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    """The one error envelope: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers or None)


def split_host(host: str) -> tuple[str, str | None]:
    """``("::1", "4317")`` from ``[::1]:4317``; ``(name, None)`` without a port."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest[1:] if rest.startswith(":") else None
    if host.count(":") == 1:
        name, port = host.split(":")
        return name, port
    return host, None


class Guards:
    def __init__(self, app: Any, *, token: str | None) -> None:
        self.app = app
        self.token = token or None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal, body = await self._check(scope, receive)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _check(self, scope: dict[str, Any], receive: Any) -> tuple[JSONResponse | None, bytes]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host", "")
        method, path = scope["method"], scope["path"]
        if self.token is None and not is_loopback(split_host(host)[0]):
            return error(403, "FORBIDDEN_HOST", "this plane has no token: only loopback host names are served"), b""
        if method in MUTATIONS and "origin" in headers:
            origin = headers["origin"].strip()
            try:
                parts = urlsplit(origin)
                ok = parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()
            except ValueError:
                ok = False
            if not ok:
                return error(403, "FORBIDDEN_ORIGIN", f"cross-origin request refused (Origin {origin[:80]!r})"), b""
        if path not in OPEN_PATHS and self.token is not None and not self._authorized(scope, headers):
            return error(401, "UNAUTHORIZED", "missing or wrong token (send 'Authorization: Bearer <token>')"), b""
        if method not in MUTATIONS:
            return None, b""
        return await self._body(scope, receive, headers)

    def _authorized(self, scope: dict[str, Any], headers: dict[str, str]) -> bool:
        assert self.token is not None
        want = self.token.encode()
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), want):
            return True
        if SSE_PATH.match(scope["path"]):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return any(hmac.compare_digest(t.encode(), want) for t in query.get("token", ()))
        return False

    async def _body(self, scope: dict[str, Any], receive: Any,
                    headers: dict[str, str]) -> tuple[JSONResponse | None, bytes]:
        too_big = error(413, "PAYLOAD_TOO_LARGE", f"the body is over {MAX_BODY} bytes", connection="close")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return too_big, b""
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY:
                return too_big, b""
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        doc: Any = {}
        if body.strip():
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                return error(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json"), b""
            try:
                doc = json.loads(body)
            except ValueError as exc:
                return error(400, "BAD_JSON", f"the body is not valid JSON ({exc})"), b""
            if not isinstance(doc, dict):
                return error(400, "BAD_JSON", "the body must be a JSON object"), b""
        scope.setdefault("state", {})["json"] = doc
        return None, body
