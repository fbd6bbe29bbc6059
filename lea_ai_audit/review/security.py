"""Sessions, CSRF tokens, one-use signing forms and the login rate limit of ``lea-audit
review``; all in the server's memory (a restart logs every officer out).

- A session is a random 256-bit id in an ``HttpOnly; SameSite=Strict`` cookie (``Secure`` with
  TLS), a new id at login (no fixation), ended after :attr:`Sessions.idle` seconds without a
  request and :attr:`Sessions.lifetime` seconds in all.
- Every form carries the session's CSRF token (the synchronizer-token pattern); a POST without
  it, or with another session's, is refused.
- The form that signs carries a one-use grant issued by the confirmation page to this session
  and this officer for this audit and decision: a replayed or copied form is refused.
- Failed logins are counted per officer id and per client address in a sliding window; beyond
  the limit the login is refused (HTTP 429) before any password is checked.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

COOKIE = "lea_review"


@dataclass
class Session:
    sid: str
    csrf: str
    created: float
    seen: float
    user: str | None = None
    #: a message for the next page this session opens (e.g. "your sign-off was recorded")
    flash: str = ""
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)


class Sessions:
    """The live sessions, by id."""

    def __init__(self, *, idle: float = 900.0, lifetime: float = 8 * 3600.0,
                 grant_ttl: float = 600.0) -> None:
        self.idle, self.lifetime, self.grant_ttl = idle, lifetime, grant_ttl
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def new(self, user: str | None = None) -> Session:
        now = time.monotonic()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now, user)
        with self._lock:
            self._expire(now)
            self._by_id[s.sid] = s
        return s

    def _expire(self, now: float) -> None:
        dead = [k for k, s in self._by_id.items()
                if now - s.seen > self.idle or now - s.created > self.lifetime]
        for k in dead:
            del self._by_id[k]

    def get(self, sid: str | None) -> Session | None:
        """The session of cookie value ``sid`` if it is alive (and mark it seen)."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            s = self._by_id.get(sid)
            if s is not None:
                s.seen = now
            return s

    def end(self, sid: str | None) -> None:
        with self._lock:
            self._by_id.pop(sid or "", None)

    @staticmethod
    def csrf_ok(session: Session | None, token: Any) -> bool:
        return (session is not None and isinstance(token, str) and bool(token)
                and hmac.compare_digest(session.csrf.encode(), token.encode("utf-8",
                                                                            "replace")))

    def grant(self, session: Session, **what: Any) -> str:
        """A one-use token for the signing form, bound to ``session`` and ``what``."""
        nonce = secrets.token_urlsafe(24)
        with self._lock:
            now = time.monotonic()
            session.grants = {k: g for k, g in session.grants.items()
                              if now - g["_at"] < self.grant_ttl}
            session.grants[nonce] = {**what, "_at": now}
        return nonce

    def take_grant(self, session: Session, nonce: Any) -> dict[str, Any] | None:
        """The grant ``nonce`` of this session, removed (a second use finds nothing)."""
        if not isinstance(nonce, str):
            return None
        with self._lock:
            g = session.grants.pop(nonce, None)
        if g is None or time.monotonic() - g["_at"] >= self.grant_ttl:
            return None
        return g


class RateLimit:
    """At most ``per_user`` failed logins per officer id and ``per_client`` per address in
    ``window`` seconds."""

    def __init__(self, *, per_user: int = 5, per_client: int = 20, window: float = 900.0
                 ) -> None:
        self.per_user, self.per_client, self.window = per_user, per_client, window
        self._lock = threading.Lock()
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        return q

    def blocked(self, user: str, client: str) -> float:
        """Seconds until a login for ``user`` from ``client`` is allowed again (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in ((f"u:{user}", self.per_user), (f"c:{client}", self.per_client)):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(self.window - (now - q[0]))
            return max(waits, default=0.0)

    def failed(self, user: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"u:{user}", f"c:{client}"):
                self._recent(key, now).append(now)
            if len(self._fails) > 10000:  # a flood of made-up ids: forget the oldest
                for k in list(self._fails)[:5000]:
                    del self._fails[k]

    def succeeded(self, user: str) -> None:
        with self._lock:
            self._fails.pop(f"u:{user}", None)


#: headers of every page: no framing by other sites, no inline script, nothing from elsewhere
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "frame-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
#: the model card, shown in a frame of the audit page: sandboxed, no script at all
CARD_HEADERS = {**PAGE_HEADERS,
                "Content-Security-Policy": ("default-src 'none'; style-src 'unsafe-inline'; "
                                            "img-src data:; frame-ancestors 'self'; sandbox"),
                "X-Frame-Options": "SAMEORIGIN"}


class BodyLimit:
    """ASGI middleware: a request body beyond ``limit`` bytes is refused with 413 (by its
    Content-Length before anything is read, or as it streams in)."""

    def __init__(self, app: Any, limit: int = 256 * 1024) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = True
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def counted() -> Any:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooBig
            return msg

        async def tracked(msg: Any) -> None:
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted, tracked)
        except _TooBig:
            if not started:
                await self._refuse(send)

    @staticmethod
    async def _refuse(send: Any) -> None:
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]
                    + [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]})
        await send({"type": "http.response.body", "body": b"request too large"})


class _TooBig(Exception):
    pass
