"""The review page and its API as an ASGI app, mounted behind your app's own login.

```python
from synapsor_runner.review import ReviewApp, Reviewer

def reviewer(scope):                      # your authentication decides who reviews, and for which tenant
    user = my_session_user(scope)         # e.g. from a session cookie
    return Reviewer(id=user.id, roles=user.roles, tenant_id=user.tenant) if user else None

app.mount("/review", ReviewApp(lambda: app.state.runner, reviewer))
```

Every request without a reviewer gets 401; every approve or reject without the page's CSRF
token (fetched from ``api/session``) gets 403; a reviewer sees and decides only their tenant's
proposals. The page never applies a change.
"""

from __future__ import annotations

import inspect
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Union
from urllib.parse import parse_qsl

from . import Runner, _native

__all__ = ["Reviewer", "ReviewApp"]


@dataclass(frozen=True)
class Reviewer:
    """Who is reviewing, as your app authenticated them."""

    id: str
    roles: tuple[str, ...] | list[str] = field(default_factory=tuple)
    #: Only this tenant's proposals are listed, shown and decided.
    tenant_id: str | None = None


ReviewerFor = Callable[[Mapping[str, Any]], Union[Reviewer, None, Awaitable[Union[Reviewer, None]]]]

_ASSETS = {
    "/": ("text/html; charset=utf-8", _native.REVIEW_INDEX_HTML),
    "/app.js": ("text/javascript; charset=utf-8", _native.REVIEW_APP_JS),
    "/app.css": ("text/css; charset=utf-8", _native.REVIEW_APP_CSS),
}


class ReviewApp:
    """An ASGI app: the review page (``/``, ``/app.js``, ``/app.css``), ``/api/session`` and the
    review API (``/api/proposals``, ``/api/proposals/<id>``, ``…/approve``, ``…/reject``,
    ``/api/replay/<id>``)."""

    def __init__(self, runner: Runner | Callable[[], Runner], reviewer: ReviewerFor) -> None:
        self._runner = runner
        self._reviewer = reviewer
        self._csrf = secrets.token_urlsafe(24)

    def _get_runner(self) -> Runner:
        return self._runner if isinstance(self._runner, Runner) else self._runner()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path == "":
            # The page's paths are relative: it must be served below a trailing slash.
            return await _send(send, 307, b"", [(b"location", (root + "/").encode())])
        who = self._reviewer(scope)
        if inspect.isawaitable(who):
            who = await who
        if who is None:
            return await _json(send, 401, {"ok": False, "code": "REVIEWER_REQUIRED", "error": "sign in to review proposals"})
        method = scope.get("method", "GET")
        if method == "GET" and path in _ASSETS:
            content_type, text = _ASSETS[path]
            return await _send(send, 200, text.encode(), [(b"content-type", content_type.encode())])
        if method == "GET" and path == "/api/session":
            return await _json(send, 200, {"ok": True, "csrf": self._csrf, "reviewer": who.id,
                                           "roles": list(who.roles), "tenant": who.tenant_id})
        body: Any = None
        if method == "POST":
            headers = dict(scope.get("headers") or [])
            if not secrets.compare_digest(headers.get(b"x-synapsor-csrf", b"").decode("latin-1"), self._csrf):
                return await _json(send, 403, {"ok": False, "code": "CSRF_REQUIRED",
                                               "error": "CSRF token required for proposal review actions"})
            raw = b""
            while True:
                message = await receive()
                raw += message.get("body", b"")
                if len(raw) > _native.REVIEW_MAX_BODY_BYTES:
                    return await _json(send, 413, {"ok": False, "code": "BODY_TOO_LARGE", "error": "request body too large"})
                if not message.get("more_body"):
                    break
            if raw:
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = []
                if not isinstance(body, dict):
                    return await _json(send, 400, {"ok": False, "code": "INVALID_BODY",
                                                   "error": "request body must be a JSON object"})
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
        answer = await self._get_runner()._native.review_handle(
            method, path, query, body, who.id, list(who.roles), who.tenant_id)
        await _json(send, answer["status"], answer["body"])


async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    security = [(k.encode(), v.encode()) for k, v in _native.REVIEW_SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers + security})
    await send({"type": "http.response.body", "body": body})


async def _json(send: Any, status: int, value: Any) -> None:
    await _send(send, status, json.dumps(value).encode(),
                [(b"content-type", b"application/json; charset=utf-8")])
