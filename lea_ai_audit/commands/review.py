"""``lea-audit review``: the oversight officers' web page (see lea_ai_audit.review), and
``lea-audit review add-user`` for the administrator. Only the standard library is imported at
module level."""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from pathlib import Path
from typing import Any

_ACTIONS = ("serve", "add-user")


def rewrite_argv(argv: list[str]) -> list[str]:
    """``lea-audit review [DIR] ...`` is ``lea-audit review serve [DIR] ...``."""
    if argv and argv[0] == "review" and (len(argv) == 1 or argv[1] not in
                                         (*_ACTIONS, "-h", "--help")):
        return ["review", "serve", *argv[1:]]
    return argv


def _need_extra() -> None:
    from ..errors import InputError

    try:
        import python_multipart  # noqa: F401 - starlette's form parser (python-multipart)
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        name = {"python_multipart": "python-multipart"}.get(exc.name or "", exc.name)
        raise InputError(f"the review page needs {name}, which is not installed",
                         "pip install 'lea-ai-audit[review]'") from None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    from ..errors import InputError
    from ..review.users import default_users_path, load_users

    if not args.dir and not args.tracking_uri:
        raise InputError("nothing to review", "pass the folder that holds the audits, or "
                                              "--tracking-uri URI")
    root = Path(args.dir) if args.dir else None
    if root is not None and not root.is_dir():
        raise InputError(f"no folder {args.dir!r}", "pass the folder that holds the audits")
    users = Path(args.users) if args.users else default_users_path()
    if not load_users(users):
        raise InputError(f"no officer can log in: the users file {str(users)!r} holds none",
                         "add one with `lea-audit review add-user ID --role ROLE`")
    if args.trust_store:
        from ..signoff import load_trust_store

        load_trust_store(args.trust_store)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise InputError("--tls-cert and --tls-key go together", "pass both, or neither")
    if not _loopback(args.host) and not args.tls_cert:
        raise InputError(f"--host {args.host} is not a loopback address and no TLS is set: "
                         "passwords would cross the network in clear",
                         "pass --tls-cert and --tls-key, or serve on 127.0.0.1 behind a "
                         "TLS proxy")
    if args.sso_header is not None:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", args.sso_header):
            raise InputError(f"--sso-header {args.sso_header!r} is not a header name",
                             "pass the header your proxy sets, e.g. X-Forwarded-User")
        if not _loopback(args.host):
            raise InputError(f"--sso-header needs --host on this machine (not {args.host}): the "
                             "header is trusted only from a proxy on the same host",
                             "serve on 127.0.0.1 and let the proxy (e.g. oauth2-proxy) "
                             "listen for the officers")
    if not 0 < args.port < 65536:
        raise InputError(f"--port {args.port} is not a port", "pass 1-65535")
    _need_extra()
    from ..review.app import ReviewConfig, serve

    hosts = list(dict.fromkeys([args.host, "127.0.0.1", "localhost", *(args.allowed_host or [])]))
    cache = Path(args.cache) if args.cache else (
        (root / ".review-cache") if root is not None
        else Path.home() / ".lea-ai-audit" / "review" / "cache")
    cfg = ReviewConfig(root=root, users=users,
                       trust_store=Path(args.trust_store) if args.trust_store else None,
                       tracking_uri=args.tracking_uri, ledger=args.ledger, cache=cache,
                       secure_cookies=bool(args.tls_cert), allowed_hosts=hosts,
                       session_idle=args.session_minutes * 60.0,
                       sso_header=args.sso_header, sso_logout=args.sso_logout_url)
    scheme = "https" if args.tls_cert else "http"
    how = (f"single sign-on by the {args.sso_header} header of a proxy on this host"
           if args.sso_header else "password")
    print(f"review: {scheme}://{args.host}:{args.port}/ (officers from {users}, log in by "
          f"{how}; Ctrl-C stops)", flush=True)
    serve(cfg, host=args.host, port=args.port, tls_cert=args.tls_cert, tls_key=args.tls_key)
    return 0


def _password(var: str | None) -> str:
    from ..errors import InputError

    if var:
        value = os.environ.get(var)
        if not value:
            raise InputError(f"the environment variable {var!r} is not set or empty",
                             f"export {var}=... with the password (never on the command line)")
        return value
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask for the password",
                         "pass --password-env VAR with the password in that variable")
    import getpass

    first = getpass.getpass("password for the new officer: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ", "run the command again")
    return first


def cmd_add_user(args: argparse.Namespace) -> int:
    from ..review.users import add_user, default_users_path

    users = Path(args.users) if args.users else default_users_path()
    u = add_user(users, args.id, role=args.role, password=_password(args.password_env),
                 key=args.key, trust_store=args.trust_store)
    print(f"officer {u.id!r} ({u.role}) added to {users}")
    print(f"signing key: {u.key} (encrypted with the officer's password; fingerprint "
          f"{u.fingerprint})")
    if args.trust_store:
        print(f"trust store: {args.trust_store}")
    else:
        print("not in a trust store yet: add the .pub file beside the key to the trust store")
    return 0


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("review", help="the oversight officers' web page: review audits and "
                                      "sign off",
                       description="lea-audit review [DIR] [--tracking-uri URI] serves the "
                                   "review page; lea-audit review add-user ID --role ROLE adds "
                                   "an officer. See `lea-audit review serve --help`.")
    rsub = p.add_subparsers(dest="review_action", metavar="{serve,add-user}")
    s = rsub.add_parser("serve", help="serve the review page (the default)",
                        description="Serve the page that lists the audits under DIR (and the "
                                    "MLflow runs that carry a report) and records officers' "
                                    "signed decisions.")
    s.add_argument("dir", nargs="?", help="the folder that holds the audits")
    s.add_argument("--tracking-uri", metavar="URI",
                   help="also list the MLflow runs of this tracking server that carry a report")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default "
                                                        "127.0.0.1)")
    s.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    s.add_argument("--users", metavar="YAML", help="the officers' accounts (default "
                                                   "$LEA_AUDIT_REVIEW_USERS, else "
                                                   "~/.lea-ai-audit/review/users.yaml)")
    s.add_argument("--trust-store", metavar="YAML",
                   help="the reviewers whose sign-offs count (as for `gate`)")
    s.add_argument("--ledger", metavar="PATH",
                   help="where page views and decisions are recorded (default: ledger.jsonl "
                        "beside each audit folder, as for `signoff`)")
    s.add_argument("--cache", metavar="DIR", help="where MLflow runs are downloaded")
    s.add_argument("--tls-cert", metavar="PEM", help="serve HTTPS with this certificate")
    s.add_argument("--tls-key", metavar="PEM", help="and this private key")
    s.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a Host header to accept besides --host (the name officers type)")
    s.add_argument("--session-minutes", type=float, default=15.0,
                   help="log an officer out after this many idle minutes (default 15)")
    s.add_argument("--sso-header", metavar="NAME",
                   help="single sign-on: trust this header, set by an authenticating proxy on "
                        "this host (e.g. oauth2-proxy's X-Forwarded-User), to name the officer; "
                        "signing still needs the officer's key password")
    s.add_argument("--sso-logout-url", metavar="URL", default="/oauth2/sign_out",
                   help="where Log out goes with --sso-header (default: oauth2-proxy's "
                        "/oauth2/sign_out)")
    kit.add_verbose(s)
    s.set_defaults(func=cmd_serve)

    a = rsub.add_parser("add-user", help="add an officer who may log in and sign",
                        description="Add an officer to the users file: the password is stored "
                                    "as an scrypt hash; a new Ed25519 signing key is written "
                                    "beside the file, encrypted with that password (or --key "
                                    "uses the officer's own encrypted key).")
    a.add_argument("id", help="the officer's reviewer id (as in the trust store)")
    a.add_argument("--role", required=True, help="e.g. model-risk-officer")
    a.add_argument("--users", metavar="YAML", help="the users file (default as for serve)")
    a.add_argument("--trust-store", metavar="YAML", help="add the officer's key to this "
                                                         "trust store")
    a.add_argument("--key", metavar="FILE",
                   help="the officer's own key from `lea-audit keygen --passphrase-env`, "
                        "whose passphrase is the password")
    a.add_argument("--password-env", metavar="VAR",
                   help="read the password from this environment variable (default: ask)")
    kit.add_verbose(a)
    a.set_defaults(func=cmd_add_user)
    p.set_defaults(func=lambda args: (p.print_help(), kit.EXIT_USAGE)[1])
    kit.add_verbose(p)
