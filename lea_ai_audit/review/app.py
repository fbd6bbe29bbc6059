"""The review web application (Starlette, Jinja templates, served by uvicorn).

Pages: ``/login``; ``/`` the audits awaiting review; ``/audit/KEY`` one audit (requirements,
sign-off rule and state, what this officer may and may not sign, the model card in a sandboxed
frame); ``/audit/KEY/card`` the card itself; POST ``/audit/KEY/confirm`` states what a sign-off
would bind and asks for the password; POST ``/audit/KEY/sign`` signs it with the officer's key
(:func:`lea_ai_audit.signoff.sign_report`, the record the CLI writes and ``lea-audit gate``
verifies). Every page view, login and decision is appended to the ledger.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LeaAuditError
from .security import CARD_HEADERS, COOKIE, PAGE_HEADERS, BodyLimit, RateLimit, Session, Sessions

_HERE = Path(__file__).resolve().parent
EXPIRY_CHOICES = ("", "30", "90", "180", "365")


@dataclass
class ReviewConfig:
    """What ``lea-audit review`` serves, and to whom."""

    root: Path | None
    users: Path
    trust_store: Path | None = None
    tracking_uri: str | None = None
    ledger: str | None = None
    cache: Path | None = None
    secure_cookies: bool = False
    allowed_hosts: list[str] = field(default_factory=lambda: ["127.0.0.1", "localhost"])
    session_idle: float = 900.0
    session_lifetime: float = 8 * 3600.0
    login_limit: int = 5
    #: single sign-on: the request header in which an authenticating proxy on this machine
    #: (e.g. oauth2-proxy in front of the force's OIDC provider) names the logged-in officer;
    #: None: officers log in with the password of their local account
    sso_header: str | None = None
    #: where "Log out" sends an officer in single sign-on (the proxy's sign-out page)
    sso_logout: str = "/oauth2/sign_out"


def _ledger_path(cfg: ReviewConfig, folder: Path | None) -> Path | None:
    from ..ledger import default_ledger_path

    if folder is not None:
        return default_ledger_path(folder, ledger=cfg.ledger)
    if cfg.ledger:
        return default_ledger_path(None, ledger=cfg.ledger)
    if cfg.root is not None:
        return default_ledger_path(None, ledger=str(Path(cfg.root).resolve() / "ledger.jsonl"))
    return None


def create_app(cfg: ReviewConfig) -> Any:
    """The Starlette application of ``cfg``."""
    import jinja2
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    from ..ledger import append_entry
    from .audits import AuditIndex
    from .users import burn_time, load_users, verify_password

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_HERE / "templates")),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    sessions = Sessions(idle=cfg.session_idle, lifetime=cfg.session_lifetime)
    limits = RateLimit(per_user=cfg.login_limit, per_client=4 * cfg.login_limit)
    index = AuditIndex(cfg.root, trust_store=cfg.trust_store, tracking_uri=cfg.tracking_uri,
                       cache=cfg.cache)
    css = (_HERE / "static" / "review.css").read_bytes()

    def client_of(request: Request) -> str:
        return request.client.host if request.client else "?"

    def record(kind: str, request: Request, user: str | None, folder: Path | None = None,
               **what: Any) -> None:
        path = _ledger_path(cfg, folder)
        if path is None:
            return
        append_entry(path, "review", {"action": kind, "user": user,
                                      "client": client_of(request), **what})

    def page(request: Request, name: str, session: Session | None, status: int = 200,
             **ctx: Any) -> Response:
        user = session.user if session else None
        html = env.get_template(name).render(user=user, csrf=session.csrf if session else "",
                                             **ctx)
        resp = HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
        if session is not None:
            resp.set_cookie(COOKIE, session.sid, httponly=True, samesite="strict",
                            secure=cfg.secure_cookies, path="/")
        return resp

    def refused(request: Request, session: Session | None, status: int, what: str,
                fix: str = "") -> Response:
        return page(request, "error.html", session, status=status, what=what, fix=fix)

    def sso_user(request: Request) -> str | None:
        """The officer the single sign-on proxy names, if the request came through it (from
        this machine) and that officer has an account here."""
        if not cfg.sso_header or client_of(request) not in ("127.0.0.1", "::1"):
            return None
        who = request.headers.get(cfg.sso_header, "").strip()[:200]
        return who if who and who in load_users(cfg.users) else None

    def officer(request: Request) -> Session | None:
        s = sessions.get(request.cookies.get(COOKIE))
        if cfg.sso_header:
            who = sso_user(request)
            if who is None:
                return None
            if s is None or s.user != who:  # the proxy's word, not an old cookie, decides
                if s is not None:
                    sessions.end(s.sid)
                s = sessions.new(who)
                record("login", request, who, via=f"single sign-on ({cfg.sso_header})")
            return s
        return s if s is not None and s.user else None

    async def form_of(request: Request) -> tuple[Session | None, Any]:
        """(the logged-in session, the form) of a POST whose CSRF token is this session's;
        (None, reason) otherwise."""
        try:
            form = await request.form(max_files=0, max_fields=200, max_part_size=64 * 1024)
        except Exception:
            return None, "the form could not be read"
        s = sessions.get(request.cookies.get(COOKIE))
        if not Sessions.csrf_ok(s, form.get("csrf")):
            return None, "the form's security token is missing or not this session's"
        if cfg.sso_header and (s is None or s.user != sso_user(request)):
            return None, "the single sign-on proxy does not name this session's officer"
        return s, form

    # -- login ------------------------------------------------------------------------------
    def sso_refused(request: Request) -> Response:
        who = request.headers.get(cfg.sso_header or "", "").strip()[:200]
        record("login-refused", request, who or None,
               reason=f"single sign-on: no officer account for {who!r}" if who
               else f"single sign-on: no {cfg.sso_header} header from a proxy on this host")
        fix = ("ask the administrator to add your account with `lea-audit review add-user`"
               if who else "open this page through your force's single sign-on")
        return page(request, "error.html", None, status=401,
                    what="You are not logged in: the single sign-on names "
                         + (f"{who!r}, who has no officer account here" if who
                            else "no officer"), fix=fix)

    async def login_page(request: Request) -> Response:
        if cfg.sso_header:
            return RedirectResponse("/", status_code=303, headers=PAGE_HEADERS)
        s = sessions.get(request.cookies.get(COOKIE)) or sessions.new()
        if s.user:
            return RedirectResponse("/", status_code=303)
        return page(request, "login.html", s, error="")

    async def login(request: Request) -> Response:
        if cfg.sso_header:
            return refused(request, None, 403, "officers log in through the single sign-on")
        s, form = await form_of(request)
        if s is None:
            return refused(request, sessions.new(), 403, form,
                           "open the login page again and log in from there")
        user_id = str(form.get("user") or "").strip()[:200]
        password = str(form.get("password") or "")
        client = client_of(request)
        wait = limits.blocked(user_id, client)
        if wait > 0:
            await run_in_threadpool(record, "login-refused", request, user_id or None,
                                    reason="too many failed logins")
            return page(request, "login.html", s, status=429,
                        error=f"Too many failed logins: try again in {int(wait) + 1} s.")
        users = await run_in_threadpool(load_users, cfg.users)
        u = users.get(user_id)
        if u is None:
            await run_in_threadpool(burn_time, password)
            good = False
        else:
            good = await run_in_threadpool(verify_password, u.password, password)
        if not good:
            limits.failed(user_id, client)
            await run_in_threadpool(record, "login-failed", request, user_id or None)
            return page(request, "login.html", s, status=401,
                        error="Wrong officer id or password.")
        limits.succeeded(user_id)
        sessions.end(s.sid)
        new = sessions.new(user_id)  # a new id at login: no session fixation
        await run_in_threadpool(record, "login", request, user_id)
        resp = RedirectResponse("/", status_code=303, headers=PAGE_HEADERS)
        resp.set_cookie(COOKIE, new.sid, httponly=True, samesite="strict",
                        secure=cfg.secure_cookies, path="/")
        return resp

    async def logout(request: Request) -> Response:
        s, form = await form_of(request)
        if s is None:
            return refused(request, None, 403, form)
        await run_in_threadpool(record, "logout", request, s.user)
        sessions.end(s.sid)
        resp = RedirectResponse(cfg.sso_logout if cfg.sso_header else "/login",
                                status_code=303, headers=PAGE_HEADERS)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    # -- pages ------------------------------------------------------------------------------
    def to_login(request: Request) -> Response:
        if cfg.sso_header:
            return sso_refused(request)
        return RedirectResponse("/login", status_code=303, headers=PAGE_HEADERS)

    async def home(request: Request) -> Response:
        s = await run_in_threadpool(officer, request)  # reads the users file, may log
        if s is None:
            return to_login(request)
        audits = await run_in_threadpool(index.listing)
        await run_in_threadpool(record, "view-list", request, s.user, None, count=len(audits))
        return page(request, "list.html", s, audits=audits, trust=cfg.trust_store is not None)

    def review_state(audit: Any, user: Any) -> dict[str, Any]:
        from ..signoff import _RULE_DEFAULTS, _same_person, failed_requirements

        rep = audit.report
        rule = {**_RULE_DEFAULTS, **dict(rep.policy.get("signoff") or {})}
        refusals: list[str] = []
        is_author = False
        if not rule.get("author_may_approve") and user is not None:
            if audit.attested_by and audit.attested_by == user.fingerprint:
                is_author = True
                refusals.append("Your key signed this audit as its author: under the "
                                "four-eyes rule you may not approve it (you may reject it).")
            elif _same_person(user.id, rep.author):
                is_author = True
                refusals.append(f"You are the audit's author ({rep.author}): under the "
                                "four-eyes rule you may not approve it (you may reject it).")
        failed = failed_requirements(rep)
        if failed:
            refusals.append("The audit did not pass: an approval needs a waiver of every "
                            "failed requirement (" + ", ".join(failed) + ") with a "
                            "justification.")
        mine = [c for c in (audit.verdict.checks if audit.verdict else ())
                if user is not None and c.fingerprint == user.fingerprint
                and c.state == "valid"]
        return {"rule": rule, "refusals": refusals, "is_author": is_author, "failed": failed,
                "mine": mine}

    async def audit_page(request: Request) -> Response:
        s = await run_in_threadpool(officer, request)  # reads the users file, may log
        if s is None:
            return to_login(request)
        return await run_in_threadpool(_audit_page, request, s, request.path_params["key"],
                                       "", 200, {})

    def _audit_page(request: Request, s: Session, key: str, error: str, status: int,
                    values: dict[str, Any]) -> Response:
        audit = index.get(key)
        if audit is None:
            return refused(request, s, 404, "no such audit", "go back to the list")
        user = load_users(cfg.users).get(s.user or "")
        record("view-audit", request, s.user, audit.folder, audit=audit.label,
               report_id=getattr(audit.report, "report_id", None))
        state = review_state(audit, user) if audit.report is not None else {}
        done, s.flash = s.flash, ""
        return page(request, "audit.html", s, status=status, a=audit, st=state, error=error,
                    done=done,
                    values=values, expiry_choices=EXPIRY_CHOICES,
                    trust=cfg.trust_store is not None)

    async def card(request: Request) -> Response:
        s = await run_in_threadpool(officer, request)  # reads the users file, may log
        if s is None:
            return Response("log in first", status_code=401, headers=PAGE_HEADERS)
        audit = await run_in_threadpool(index.get, request.path_params["key"])
        if audit is None or audit.report is None:
            return Response("no such audit", status_code=404, headers=PAGE_HEADERS)
        html, note = await run_in_threadpool(_card_html, audit)
        await run_in_threadpool(record, "view-card", request, s.user, audit.folder,
                                audit=audit.label, report_id=audit.report.report_id,
                                note=note or None)
        return HTMLResponse(html, headers=CARD_HEADERS)

    def _card_html(audit: Any) -> tuple[str, str]:
        """The card rendered afresh from the report (what a sign-off binds), never the
        card.html on disk, which anyone with write access could have edited."""
        import json

        from .._io import strict_json
        from ..cards import build_card, render

        meta: Any = {}
        p = audit.folder / "card.json"
        if p.is_file():
            try:
                old = strict_json(p.read_text(encoding="utf-8"))
                meta = old.get("metadata") if isinstance(old, dict) else {}
            except (OSError, ValueError):
                meta = {}
        c = build_card(audit.report, report_dir=audit.folder, figures=True,
                       metadata=meta if isinstance(meta, dict) else {},
                       trust_store=cfg.trust_store)
        from ..signoff import card_body_digest, card_digest

        on_disk = card_digest(audit.folder)
        mine = card_body_digest(json.loads(render(c, "json")))
        note = "" if on_disk in (None, mine) else "card.json differs from the report"
        return render(c, "html"), note

    # -- deciding ---------------------------------------------------------------------------
    def _decision(form: Any) -> dict[str, Any]:
        choice = str(form.get("decision") or "")
        decision = {"approve": "approve", "waive": "approve", "reject": "reject"}.get(choice)
        return {"choice": choice, "decision": decision,
                "comment": str(form.get("comment") or "").strip()[:4000],
                "waive": [str(w) for w in form.getlist("waive")][:100]
                if choice == "waive" else [],
                "justification": str(form.get("justification") or "").strip()[:4000]
                if choice == "waive" else "",
                "expires": str(form.get("expires") or "")
                if str(form.get("expires") or "") in EXPIRY_CHOICES else ""}

    def _problem(audit: Any, user: Any, d: dict[str, Any]) -> str:
        """Why this decision cannot be signed (the server's own check, whatever the page
        showed), or ''."""
        if user is None:
            return "your account is no longer in the users file"
        if d["decision"] is None:
            return "choose approve, approve with waiver, or reject"
        if audit.problem or audit.report is None:
            return f"this audit cannot be reviewed: {audit.problem}"
        st = review_state(audit, user)
        if d["decision"] == "approve" and st["is_author"]:
            return st["refusals"][0]
        if d["decision"] == "reject" and not d["comment"]:
            return "a rejection needs a comment saying why"
        if d["choice"] == "waive" and not st["failed"]:
            return "the audit passed: approve it without a waiver"
        if d["decision"] == "approve" and st["failed"]:
            missing = [f for f in st["failed"] if f not in d["waive"]]
            if d["choice"] != "waive" or missing:
                return ("the audit did not pass: an approval needs a waiver of "
                        + ", ".join(missing or st["failed"]))
            if not d["justification"]:
                return "a waiver needs a justification"
        unknown = [w for w in d["waive"] if w not in st["failed"]]
        if unknown:
            return "only failed requirements can be waived: " + ", ".join(unknown)
        return ""

    def _binding(audit: Any) -> dict[str, Any]:
        from ..attest import envelope_digest, load_attestation
        from ..signoff import card_digest

        rep = audit.report
        att = load_attestation(audit.folder)
        return {"report_id": rep.report_id, "report_digest": rep.digest(),
                "model_card_sha256": card_digest(audit.folder),
                "model_sha256": (rep.subject.get("model") or {}).get("file_sha256"),
                "policy": f"{rep.policy.get('id')} {rep.policy.get('version')}",
                "policy_sha256": rep.policy.get("sha256"),
                "data_sha256": rep.data.get("sha256"),
                "attestation_sha256": envelope_digest(att) if att is not None else None}

    async def confirm(request: Request) -> Response:
        s, form = await form_of(request)
        if s is None or not s.user:
            return refused(request, None, 403, form if s is None else "log in first",
                           "reload the audit page and submit the form from there")
        return await run_in_threadpool(_confirm, request, s, request.path_params["key"], form)

    def _confirm(request: Request, s: Session, key: str, form: Any) -> Response:
        audit = index.get(key)
        if audit is None:
            return refused(request, s, 404, "no such audit")
        user = load_users(cfg.users).get(s.user or "")
        d = _decision(form)
        why = _problem(audit, user, d)
        if why:
            record("refused", request, s.user, audit.folder, audit=audit.label, reason=why)
            return _audit_page(request, s, key, why, 400, d)
        binding = _binding(audit)
        nonce = sessions.grant(s, user=s.user, key=key, decision=d, binding=binding)
        return page(request, "confirm.html", s, a=audit, d=d, b=binding, nonce=nonce, error="")

    async def sign(request: Request) -> Response:
        s, form = await form_of(request)
        if s is None or not s.user:
            return refused(request, None, 403, form if s is None else "log in first",
                           "reload the audit page and submit the form from there")
        key = request.path_params["key"]
        grant = sessions.take_grant(s, form.get("grant"))
        if grant is None or grant["user"] != s.user or grant["key"] != key:
            await run_in_threadpool(record, "refused", request, s.user, None,
                                    reason="signing form used twice, expired or not issued "
                                           "to this session")
            return refused(request, s, 409, "this signing form was already used, has "
                                            "expired, or was not issued to you",
                           "open the audit again and confirm your decision anew")
        client = client_of(request)
        wait = limits.blocked(s.user, client)
        if wait > 0:
            return refused(request, s, 429, f"too many wrong passwords: try again in "
                                            f"{int(wait) + 1} s")
        password = str(form.get("password") or "")
        return await run_in_threadpool(_sign, request, s, key, grant, password)

    def _sign(request: Request, s: Session, key: str, grant: dict[str, Any], password: str
              ) -> Response:
        from ..signoff import load_private_key, sign_report

        audit = index.get(key)
        users = load_users(cfg.users)
        user = users.get(s.user or "")
        if audit is None or user is None:
            return refused(request, s, 404, "no such audit or officer")
        d = grant["decision"]
        if _binding(audit) != grant["binding"]:
            record("refused", request, s.user, audit.folder, audit=audit.label,
                   reason="the audit changed between confirmation and signing")
            return _audit_page(request, s, key, "The audit changed after you confirmed: "
                               "review it again.", 409, d)
        why = _problem(audit, user, d)
        if why:
            return _audit_page(request, s, key, why, 400, d)
        if not verify_password(user.password, password):
            limits.failed(user.id, client_of(request))
            record("refused", request, s.user, audit.folder, audit=audit.label,
                   reason="wrong password at signing")
            nonce = sessions.grant(s, **{k: v for k, v in grant.items() if k != "_at"})
            return page(request, "confirm.html", s, status=401, a=audit, d=d,
                        b=grant["binding"], nonce=nonce, error="Wrong password.")
        try:
            priv = load_private_key(user.key, passphrase=password)
            signed = sign_report(audit.folder, key=priv, reviewer=user.id,
                                 decision=d["decision"], comment=d["comment"], role=user.role,
                                 expires=int(d["expires"]) if d["expires"] else None,
                                 waive=d["waive"] or None,
                                 justification=d["justification"] or None,
                                 trust_store=cfg.trust_store, ledger=cfg.ledger)
        except LeaAuditError as exc:
            record("refused", request, s.user, audit.folder, audit=audit.label,
                   reason=str(exc))
            return _audit_page(request, s, key, str(exc), 400, d)
        record("decision", request, s.user, audit.folder, audit=audit.label,
               report_id=audit.report.report_id, decision=d["decision"],
               waived=d["waive"], signoff=signed.path.name)
        from ..commands.oversight import _rerender_cards

        _rerender_cards(audit.folder, cfg.trust_store)
        s.flash = (f"Your signed {d['decision']} was recorded ({signed.path.name})"
                   + (f"; ledger entry {signed.ledger_entry['seq']}" if signed.ledger_entry
                      else "") + ".")
        return RedirectResponse(f"/audit/{key}#decide", status_code=303,
                                headers=PAGE_HEADERS)

    async def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css",
                        headers={**PAGE_HEADERS, "Cache-Control": "max-age=3600"})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204, headers=PAGE_HEADERS)

    async def not_found(request: Request, exc: Exception) -> Response:
        return Response("not found", status_code=404, headers=PAGE_HEADERS)

    routes = [Route("/", home), Route("/login", login_page, methods=["GET"]),
              Route("/login", login, methods=["POST"]),
              Route("/logout", logout, methods=["POST"]),
              Route("/static/review.css", stylesheet), Route("/favicon.ico", favicon),
              Route("/audit/{key:str}", audit_page),
              Route("/audit/{key:str}/card", card),
              Route("/audit/{key:str}/confirm", confirm, methods=["POST"]),
              Route("/audit/{key:str}/sign", sign, methods=["POST"])]
    return Starlette(routes=routes, exception_handlers={404: not_found},
                     middleware=[Middleware(BodyLimit, limit=256 * 1024),
                                 Middleware(TrustedHostMiddleware,
                                            allowed_hosts=cfg.allowed_hosts)])


def serve(cfg: ReviewConfig, *, host: str = "127.0.0.1", port: int = 8765,
          tls_cert: str | None = None, tls_key: str | None = None) -> None:
    """Run the application with uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    app = create_app(cfg)
    uvicorn.run(app, host=host, port=port, log_level=os.environ.get("LEA_REVIEW_LOG", "info"),
                ssl_certfile=tls_cert, ssl_keyfile=tls_key, server_header=False,
                proxy_headers=False, access_log=True)
