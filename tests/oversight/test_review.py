"""The officers' review page (#17), for real: ``lea-audit review`` started by the test on
127.0.0.1 (stopped by its pid), real audits from the demo signed by their author, officers
added with ``lea-audit review add-user``, headless Chromium driven by playwright, and
``lea-audit gate --require-signoff`` as the independent judge of what the page signed.

Attacks tried over plain HTTP (requests): no session, a wrong password and the login rate
limit, a form without its CSRF token, another officer's session, a replayed signing form, the
author's own approval, an approval of a failed audit without a waiver, markup in a folder
name."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
import requests
from _review import audit_key, csrf, login, review_server

from lea_ai_audit.cli import main
from lea_ai_audit.ledger import read_ledger, verify_ledger
from lea_ai_audit.results import AuditReport

PASSWORDS = {"alice": "alice-long-password", "bob": "bob-long-password-1",
             "carol": "carol-long-password", "dave": "dave-long-password-",
             "erin": "erin-long-password-"}
ROLES = {"alice": "data-scientist", "bob": "model-risk-officer",
         "carol": "data-protection-officer", "dave": "model-risk-officer",
         "erin": "model-risk-officer"}
HOSTILE = "x<script>alert(1)</script>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    """(base URL, root folder, trust store) of a review server over three audits."""
    base = tmp_path_factory.mktemp("review")
    env = {**os.environ, **{f"PW_{k.upper()}": v for k, v in PASSWORDS.items()}}
    os.environ.update({f"PW_{k.upper()}": v for k, v in PASSWORDS.items()})
    trust, users, keys = base / "trust.yaml", base / "users.yaml", base / "keys"
    # alice audits, with her own encrypted key (keygen), which she also signs with in the page
    assert main(["keygen", "--reviewer", "alice", "--role", "data-scientist", "--out",
                 str(keys), "--trust-store", str(trust), "--passphrase-env", "PW_ALICE"]) == 0
    root = base / "audits"
    for name, bias, code in (("passing", "0", 0), ("failing", "0.6", 1)):
        assert main(["demo", "--out", str(root / name), "--rows", "4000", "--bias", bias,
                     "--author", "alice", "--sign-key", str(keys / "alice.key"),
                     "--sign-passphrase-env", "PW_ALICE", "-q"]) == code
    shutil.copytree(root / "passing", root / HOSTILE)
    assert main(["review", "add-user", "alice", "--role", "data-scientist", "--users",
                 str(users), "--key", str(keys / "alice.key"), "--password-env",
                 "PW_ALICE"]) == 0
    for who in ("bob", "carol", "dave", "erin"):
        assert main(["review", "add-user", who, "--role", ROLES[who], "--users", str(users),
                     "--trust-store", str(trust), "--password-env", f"PW_{who.upper()}"]) == 0
    with review_server([str(root), "--users", str(users), "--trust-store", str(trust)],
                       log=base / "server.log", env=env) as url:
        yield url, root, trust


def _csrf(html: str) -> str:
    return csrf(html)


def _login(url: str, who: str, password: str | None = None) -> requests.Session:
    return login(url, who, password or PASSWORDS[who])


def _key_of(s: requests.Session, url: str, label: str) -> str:
    return audit_key(s, url, label)


def _gate(folder: Path, trust: Path) -> int:
    return main(["gate", str(folder), "--require-signoff", "--trust-store", str(trust),
                 "--model", str(folder / "model.skops"), "-q"])


def _signoffs(folder: Path) -> list[Path]:
    return sorted((folder / "signoffs").glob("*.json")) if (folder / "signoffs").is_dir() \
        else []


def test_two_officers_approve_in_chromium_and_the_gate_opens(site, browser) -> None:
    url, root, trust = site
    folder = root / "passing"
    assert _gate(folder, trust) == 1  # no sign-off yet: the gate is closed
    digest = AuditReport.load(folder / "report.json").digest()
    for n, who in enumerate(("bob", "carol"), start=1):
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(url + "/")
        assert page.url.endswith("/login")  # no session: the login page
        page.fill("input[name=user]", who)
        page.fill("input[name=password]", PASSWORDS[who])
        page.click("button[type=submit]")
        assert "Audits awaiting review" in page.content()
        page.click("a:text-is('passing')")
        card = page.frame_locator("iframe.card")
        assert card.locator("h1").first.inner_text(timeout=30000) == \
            "Demo risk tool (synthetic data)"
        page.check("input[value=approve]")
        page.fill("textarea[name=comment]", f"evidence reviewed by {who}")
        page.click("text=Review what I sign")
        text = page.inner_text("main")
        assert digest in text and "What the signature binds" in text  # stated before signing
        page.fill("input[name=password]", PASSWORDS[who])
        page.click("button:has-text('Sign approve')")
        page.wait_for_url(re.compile(r"#decide$"))
        assert "Your signed approve was recorded" in page.inner_text("p.done")
        state = page.inner_text("dl.facts")
        assert ("approved" if n == 2 else "awaiting 1 more approval") in state
        if n == 1:
            page.screenshot(path=str(root.parent / "review-page.png"), full_page=False)
            assert _gate(folder, trust) == 1  # one approval of two
        ctx.close()
    assert _gate(folder, trust) == 0  # two approvals by two officers: the gate opens
    records = [e for e in read_ledger(root / "ledger.jsonl") if e["kind"] == "review"]
    did = {(e["data"]["user"], e["data"]["action"]) for e in records}
    for who in ("bob", "carol"):
        assert {(who, "login"), (who, "view-list"), (who, "view-audit"), (who, "view-card"),
                (who, "decision")} <= did
    assert verify_ledger(root / "ledger.jsonl").ok


def test_the_author_may_not_approve_shown_and_enforced(site, browser) -> None:
    url, root, _trust = site
    folder = root / "failing"
    ctx = browser.new_context()
    page = ctx.new_page()
    page.goto(url + "/login")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.click("a:text-is('failing')")
    assert "four-eyes rule you may not approve" in page.inner_text("main")
    assert page.is_disabled("input[value=waive]")
    ctx.close()
    before = _signoffs(folder)
    s = _login(url, "alice")
    key = _key_of(s, url, "failing")
    token = _csrf(s.get(f"{url}/audit/{key}").text)
    failed = [c.requirement_id for c in AuditReport.load(folder / "report.json").checks
              if c.status.value == "fail"]
    r = s.post(f"{url}/audit/{key}/confirm", data={
        "csrf": token, "decision": "waive", "waive": failed, "justification": "mine",
        "comment": "x"})
    assert r.status_code == 400 and "four-eyes" in r.text  # the server refuses it too
    assert _signoffs(folder) == before


def test_a_failed_audit_needs_a_waiver_of_each_failed_requirement(site) -> None:
    url, root, _trust = site
    folder = root / "failing"
    failed = [c.requirement_id for c in AuditReport.load(folder / "report.json").checks
              if c.status.value == "fail"]
    assert failed
    s = _login(url, "dave")
    key = _key_of(s, url, "failing")
    page = s.get(f"{url}/audit/{key}").text
    assert "needs a waiver of every failed requirement" in page
    token = _csrf(page)
    for data in ({"decision": "approve"},
                 {"decision": "waive", "waive": failed[1:], "justification": "j"},
                 {"decision": "waive", "waive": failed, "justification": ""}):
        r = s.post(f"{url}/audit/{key}/confirm", data={"csrf": token, "comment": "c", **data})
        assert r.status_code == 400, data
    r = s.post(f"{url}/audit/{key}/confirm", data={
        "csrf": token, "comment": "c", "decision": "waive", "waive": failed,
        "justification": "accepted for a pilot under supervision"})
    assert r.status_code == 200 and "with a waiver of" in r.text


def test_requests_without_a_session_are_refused(site) -> None:
    url, _root, _trust = site
    s = _login(url, "bob")
    key = _key_of(s, url, "passing")
    anon = requests.Session()
    r = anon.get(url + "/", allow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert anon.get(f"{url}/audit/{key}", allow_redirects=False).status_code == 303
    assert anon.get(f"{url}/audit/{key}/card").status_code == 401
    for path in ("confirm", "sign"):
        r = anon.post(f"{url}/audit/{key}/{path}", data={"decision": "reject", "comment": "x"})
        assert r.status_code == 403
    assert requests.get(url + "/", headers={"Host": "evil.example"}).status_code == 400


def test_a_wrong_password_is_refused_and_logins_are_rate_limited(site) -> None:
    url, _root, _trust = site
    s = requests.Session()
    for _ in range(5):
        token = _csrf(s.get(url + "/login").text)
        r = s.post(url + "/login", data={"csrf": token, "user": "erin", "password": "wrong"},
                   allow_redirects=False)
        assert r.status_code == 401 and "Wrong officer id or password" in r.text
    token = _csrf(s.get(url + "/login").text)
    r = s.post(url + "/login", data={"csrf": token, "user": "erin",
                                      "password": PASSWORDS["erin"]}, allow_redirects=False)
    assert r.status_code == 429  # even the right password, once the limit is reached
    r = s.post(url + "/login", data={"csrf": token, "user": "nobody", "password": "x"},
               allow_redirects=False)
    assert r.status_code == 401  # an unknown id reads like a wrong password


def test_forms_without_their_csrf_token_or_from_another_session_are_refused(site) -> None:
    url, root, _trust = site
    s = requests.Session()
    s.get(url + "/login")
    r = s.post(url + "/login", data={"user": "bob", "password": PASSWORDS["bob"]},
               allow_redirects=False)
    assert r.status_code == 403  # no CSRF token: not even a login
    bob, carol = _login(url, "bob"), _login(url, "carol")
    key = _key_of(bob, url, "failing")
    bob_token = _csrf(bob.get(f"{url}/audit/{key}").text)
    form = {"decision": "reject", "comment": "the FPR gap is too large"}
    assert bob.post(f"{url}/audit/{key}/confirm", data=form).status_code == 403
    r = carol.post(f"{url}/audit/{key}/confirm", data={"csrf": bob_token, **form})
    assert r.status_code == 403  # bob's token in carol's session
    confirm = bob.post(f"{url}/audit/{key}/confirm", data={"csrf": bob_token, **form})
    assert confirm.status_code == 200
    grant = re.search(r'name="grant" value="([^"]+)"', confirm.text).group(1)
    carol_token = _csrf(carol.get(f"{url}/audit/{key}").text)
    before = _signoffs(root / "failing")
    r = carol.post(f"{url}/audit/{key}/sign", data={"csrf": carol_token, "grant": grant,
                                                     "password": PASSWORDS["carol"]})
    assert r.status_code == 409  # a signing form issued to bob, in carol's session
    assert _signoffs(root / "failing") == before


def test_a_replayed_signing_form_is_refused(site) -> None:
    url, root, _trust = site
    folder = root / "failing"
    s = _login(url, "carol")
    key = _key_of(s, url, "failing")
    token = _csrf(s.get(f"{url}/audit/{key}").text)
    confirm = s.post(f"{url}/audit/{key}/confirm", data={
        "csrf": token, "decision": "reject", "comment": "FPR gap for minority_b"})
    grant = re.search(r'name="grant" value="([^"]+)"', confirm.text).group(1)
    form = {"csrf": token, "grant": grant, "password": PASSWORDS["carol"]}
    before = _signoffs(folder)
    wrong = s.post(f"{url}/audit/{key}/sign", data={**form, "password": "not hers"})
    assert wrong.status_code == 401 and _signoffs(folder) == before
    grant = re.search(r'name="grant" value="([^"]+)"', wrong.text).group(1)  # a new one
    form["grant"] = grant
    r = s.post(f"{url}/audit/{key}/sign", data=form, allow_redirects=False)
    assert r.status_code == 303
    after = _signoffs(folder)
    assert len(after) == len(before) + 1
    r = s.post(f"{url}/audit/{key}/sign", data=form, allow_redirects=False)
    assert r.status_code == 409 and _signoffs(folder) == after  # the replay signs nothing
    assert _gate(folder, site[2]) == 1  # a failed audit with a rejection stays closed


def test_markup_from_data_is_escaped_and_pages_carry_security_headers(site) -> None:
    url, _root, _trust = site
    s = _login(url, "bob")
    r = s.get(url + "/")
    assert "<script>alert(1)" not in r.text and "x&lt;script&gt;alert(1)&lt;/script&gt;" \
        in r.text
    csp = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src" not in csp \
        and "default-src 'none'" in csp
    assert r.headers["x-frame-options"] == "DENY"
    cookie = s.get(url + "/login").headers.get("set-cookie", "")
    for flag in ("HttpOnly", "SameSite=strict"):
        assert flag.lower() in cookie.lower()
    key = _key_of(s, url, "x&lt;script&gt;alert(1)&lt;/script&gt;")
    card = s.get(f"{url}/audit/{key}/card")
    assert card.status_code == 200 and "sandbox" in card.headers["content-security-policy"]
    assert "<script" not in card.text.lower()


def test_sessions_expire() -> None:
    from lea_ai_audit.review.security import Sessions

    sessions = Sessions(idle=0.2, lifetime=10)
    s = sessions.new("bob")
    assert sessions.get(s.sid) is s
    time.sleep(0.3)
    assert sessions.get(s.sid) is None  # idle too long
    sessions = Sessions(idle=10, lifetime=0.3)
    s = sessions.new("bob")
    for _ in range(4):
        time.sleep(0.1)
        sessions.get(s.sid)
    assert sessions.get(s.sid) is None  # in use, but past its lifetime


@pytest.mark.parametrize(("argv", "says"), [
    (["review", "serve"], "nothing to review"),
    (["review", "{root}", "--users", "{base}/none.yaml"], "no officer can log in"),
    (["review", "{root}", "--users", "{users}", "--host", "0.0.0.0"], "not a loopback"),
    (["review", "{root}", "--users", "{users}", "--tls-cert", "c.pem"], "go together"),
    (["review", "{base}/missing"], "no folder"),
    (["review", "{root}", "--users", "{users}", "--sso-header", "X-Forwarded-User", "--host",
      "0.0.0.0", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "proxy on the same host"),
    (["review", "{root}", "--users", "{users}", "--sso-header", "X User:"], "not a header"),
    (["review", "add-user", "zed", "--role", "r", "--users", "{users}", "--password-env",
      "PW_SHORT"], "at least 12"),
    (["review", "add-user", "bob", "--role", "r", "--users", "{users}", "--password-env",
      "PW_BOB"], "already in"),
    (["review", "add-user", "zed", "--role", "r", "--users", "{users}"], "no terminal"),
])
def test_bad_review_commands_are_one_line_errors(site, argv, says, capsys, monkeypatch
                                                 ) -> None:
    _url, root, _trust = site
    base = root.parent
    monkeypatch.setenv("PW_SHORT", "short")
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 - not a terminal
    before = (base / "users.yaml").read_bytes()
    args = [a.format(root=root, base=base, users=base / "users.yaml") for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1, err
    assert (base / "users.yaml").read_bytes() == before  # nothing written half-way


def test_single_sign_on_trusts_the_proxy_header_and_signing_still_needs_the_password(
        site, tmp_path: Path) -> None:
    """--sso-header: an authenticating proxy on this host (e.g. oauth2-proxy before the
    force's OIDC provider) names the officer; no header, or an officer without an account,
    is refused; the key password still unlocks the signature."""
    from lea_ai_audit.signoff import check_signoffs

    _url, root, trust = site
    base = root.parent
    mine = tmp_path / "audits"
    shutil.copytree(root / "failing", mine / "failing",
                    ignore=shutil.ignore_patterns("signoffs", ".review-cache"))
    with review_server([str(mine), "--users", str(base / "users.yaml"), "--trust-store",
                        str(trust), "--sso-header", "X-Forwarded-User"],
                       log=tmp_path / "sso.log") as url:
        anon = requests.Session()
        r = anon.get(url + "/")
        assert r.status_code == 401 and "names no officer" in r.text
        r = anon.get(url + "/", headers={"X-Forwarded-User": "mallory"})
        assert r.status_code == 401 and "has no officer account" in r.text
        r = anon.post(url + "/login", data={"user": "dave", "password": PASSWORDS["dave"]})
        assert r.status_code == 403  # no password login beside the single sign-on
        dave = requests.Session()
        dave.headers["X-Forwarded-User"] = "dave"
        home = dave.get(url + "/")
        assert home.status_code == 200 and "logged in as <b>dave</b>" in home.text
        key = audit_key(dave, url, "failing")
        token = csrf(dave.get(f"{url}/audit/{key}").text)
        # the proxy now names erin: dave's cookie and token do not carry over
        r = dave.post(f"{url}/audit/{key}/confirm", headers={"X-Forwarded-User": "erin"},
                      data={"csrf": token, "decision": "reject", "comment": "x"})
        assert r.status_code == 403
        token = csrf(dave.get(f"{url}/audit/{key}").text)
        confirm = dave.post(f"{url}/audit/{key}/confirm", data={
            "csrf": token, "decision": "reject", "comment": "FPR gap too large"})
        assert confirm.status_code == 200
        g = re.search(r'name="grant" value="([^"]+)"', confirm.text).group(1)
        r = dave.post(f"{url}/audit/{key}/sign", data={"csrf": token, "grant": g,
                                                        "password": "not his"})
        assert r.status_code == 401
        g = re.search(r'name="grant" value="([^"]+)"', r.text).group(1)
        r = dave.post(f"{url}/audit/{key}/sign", allow_redirects=False, data={
            "csrf": token, "grant": g, "password": PASSWORDS["dave"]})
        assert r.status_code == 303
    verdict = check_signoffs(mine / "failing", trust_store=trust)
    assert [(c.reviewer, c.decision, c.state) for c in verdict.checks] == \
        [("dave", "reject", "valid")]
    logins = [e["data"] for e in read_ledger(mine / "ledger.jsonl")
              if e["kind"] == "review" and e["data"]["action"].startswith("login")]
    assert {"dave", "mallory", None} <= {e["user"] for e in logins}
    assert any("single sign-on" in (e.get("via") or "") for e in logins)


def test_the_proxy_header_is_ignored_from_another_machine_and_big_bodies_are_refused(
        site) -> None:
    """In-process (starlette's TestClient, whose client address is not loopback): the
    header alone logs no one in; a body beyond 256 KB is refused before it is parsed."""
    from starlette.testclient import TestClient

    from lea_ai_audit.review.app import ReviewConfig, create_app

    _url, root, trust = site
    cfg = ReviewConfig(root=root, users=root.parent / "users.yaml", trust_store=trust,
                       ledger="off", sso_header="X-Forwarded-User",
                       allowed_hosts=["testserver"])
    with TestClient(create_app(cfg)) as c:
        r = c.get("/", headers={"X-Forwarded-User": "dave"})
        assert r.status_code == 401
    with TestClient(create_app(ReviewConfig(root=root, users=root.parent / "users.yaml",
                                            ledger="off", allowed_hosts=["testserver"]))) as c:
        r = c.post("/login", content=b"user=" + b"a" * 300_000,
                   headers={"content-type": "application/x-www-form-urlencoded"})
        assert r.status_code == 413 and r.headers["x-frame-options"] == "DENY"


def test_without_the_review_extra_the_command_says_what_to_install(site, capsys, monkeypatch
                                                                   ) -> None:
    import sys

    _url, root, _trust = site
    monkeypatch.setitem(sys.modules, "python_multipart", None)  # as if not installed
    assert main(["review", str(root), "--users", str(root.parent / "users.yaml")]) == 2
    err = capsys.readouterr().err
    assert err == ("error: the review page needs python-multipart, which is not installed "
                   "— pip install 'lea-ai-audit[review]'\n"), err
