"""``lea-audit review``: oversight officers review audits and sign off in a web page.

A Starlette application served by uvicorn on 127.0.0.1 (by default) lists the audits under a
folder (and the MLflow runs that carry a report), shows each audit's requirements, sign-off
rule and model card, and records an approval, a rejection or an approval with a waiver as the
same Ed25519-signed record ``lea-audit signoff`` writes (``lea-audit gate --require-signoff``
verifies both alike). Officers log in with local accounts (:mod:`.users`); sessions, CSRF,
one-use signing forms and the login rate limit are in :mod:`.security`.

Needs the ``review`` extra: ``pip install 'lea-ai-audit[review]'``.
"""

from __future__ import annotations

__all__ = ["ReviewConfig", "add_user", "create_app", "load_users", "serve"]


def __getattr__(name: str):  # lazy: the CLI's --help does not import Starlette
    if name in ("ReviewConfig", "create_app", "serve"):
        from . import app

        return getattr(app, name)
    if name in ("add_user", "load_users"):
        from . import users

        return getattr(users, name)
    raise AttributeError(name)
