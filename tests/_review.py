"""Starting and stopping a real ``lea-audit review`` server for the tests (127.0.0.1, a free
port, stopped by its process id), and the HTTP helpers the review tests share."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def review_server(args: list[str], *, log: Path, env: Mapping[str, str] | None = None
                  ) -> Iterator[str]:
    """Run ``lea-audit review serve ARGS --port P`` and yield its URL until the block ends."""
    port = free_port()
    out = open(log, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, "-c", "from lea_ai_audit.cli import main; "
                             "raise SystemExit(main())", "review", "serve", *args, "--host",
                             "127.0.0.1", "--port", str(port)],
                            env={**os.environ, **(env or {}), "LEA_REVIEW_LOG": "warning"},
                            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/login", timeout=2,
                                allow_redirects=False).status_code in (200, 303):
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                out.flush()
                pytest.fail("the review server did not start: " + log.read_text())
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def grant(html: str) -> str:
    m = re.search(r'name="grant" value="([^"]+)"', html)
    assert m, html[:800]
    return m.group(1)


def login(url: str, who: str, password: str) -> requests.Session:
    s = requests.Session()
    token = csrf(s.get(url + "/login").text)
    r = s.post(url + "/login", data={"csrf": token, "user": who, "password": password},
               allow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    return s


def audit_key(s: requests.Session, url: str, label: str) -> str:
    html = s.get(url + "/").text
    m = re.search(r'href="/audit/([0-9a-f]{16})">' + re.escape(label) + "<", html)
    assert m, html[:2000]
    return m.group(1)


def sign(s: requests.Session, url: str, key: str, password: str, **form: object
         ) -> requests.Response:
    """Confirm and sign a decision as the page's forms do; returns the signing response."""
    token = csrf(s.get(f"{url}/audit/{key}").text)
    confirm = s.post(f"{url}/audit/{key}/confirm", data={"csrf": token, **form})
    assert confirm.status_code == 200, confirm.text[:2000]
    return s.post(f"{url}/audit/{key}/sign", data={"csrf": token, "grant": grant(confirm.text),
                                                    "password": password},
                  allow_redirects=False)
