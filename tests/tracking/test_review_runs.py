"""``lea-audit review --tracking-uri URI`` (#17): the audits logged to a real ``mlflow server``
are listed and signed in the page; the sign-off is logged back to the same run, and one made
elsewhere (``lea-audit signoff`` on the audit folder) shows in the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from _review import audit_key, login, review_server, sign

from lea_ai_audit.cli import main


def row(listing: str, key: str) -> str:
    """The table row of the audit ``key`` in the list page (other tests' runs share the
    server)."""
    m = re.search(r'<tr>\s*<td><a href="/audit/' + key + r'">.*?</tr>', listing, re.S)
    assert m, listing[:2000]
    return m.group(0)


PW = {"bob": "bob-long-password-1", "carol": "carol-long-password"}


def test_an_mlflow_run_is_reviewed_and_signed_in_the_page(mlflow_server: str, tmp_path: Path,
                                                          monkeypatch) -> None:
    from mlflow.tracking import MlflowClient

    for who, pw in PW.items():
        monkeypatch.setenv(f"PW_{who.upper()}", pw)
    trust, users = tmp_path / "trust.yaml", tmp_path / "users.yaml"
    for who, role in (("bob", "model-risk-officer"), ("carol", "data-protection-officer")):
        assert main(["review", "add-user", who, "--role", role, "--users", str(users),
                     "--trust-store", str(trust), "--password-env", f"PW_{who.upper()}"]) == 0
    folder, ledger = tmp_path / "audit", str(tmp_path / "ledger.jsonl")
    assert main(["demo", "--out", str(folder), "--rows", "3000", "--bias", "0", "--author",
                 "alice", "--tracking-uri", mlflow_server, "--ledger", ledger, "-q"]) == 0
    client = MlflowClient(tracking_uri=mlflow_server)
    report_id = json.loads((folder / "report.json").read_text())["report_id"]
    (run,) = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                filter_string=f"tags.`lea.report_id` = '{report_id}'")
    label = f"MLflow run {run.data.tags['mlflow.runName']}"
    with review_server(["--tracking-uri", mlflow_server, "--users", str(users),
                        "--trust-store", str(trust), "--cache", str(tmp_path / "cache"),
                        "--ledger", ledger],
                       log=tmp_path / "review.log") as url:
        s = login(url, "bob", PW["bob"])
        key = audit_key(s, url, label)
        assert "<td>awaiting 2 more approvals</td>" in row(s.get(url + "/").text, key)
        r = sign(s, url, key, PW["bob"], decision="approve", comment="checked in MLflow")
        assert r.status_code == 303, r.text[:2000]
        tags = client.get_run(run.info.run_id).data.tags
        assert tags["lea.signoff.latest"].startswith("approve by bob (model-risk-officer)")
        logged = [a.path for a in client.list_artifacts(run.info.run_id, "signoffs")]
        assert len(logged) == 1
        # carol signs the audit folder with the CLI: it reaches the run, and then the page
        assert main(["signoff", str(folder), "--key", str(tmp_path / "keys" / "carol.key"),
                     "--passphrase-env", "PW_CAROL", "--reviewer", "carol", "--decision",
                     "approve", "--comment", "seen", "--trust-store", str(trust),
                     "--ledger", ledger]) == 0
        assert "<td>approved</td>" in row(s.get(url + "/").text, key)
        cached = tmp_path / "cache" / "mlflow" / run.info.run_id
        assert len(list((cached / "signoffs").glob("*.json"))) == 2  # no record twice
    assert main(["gate", str(cached), "--require-signoff", "--trust-store", str(trust),
                 "--no-model-check", "--allow-unsigned-audit", "--ledger", ledger, "-q"]) == 0
