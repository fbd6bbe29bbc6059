"""Human oversight from the CLI: ``lea-audit keygen`` and ``signoff``; ``gate --require-signoff
--trust-store FILE [--model PATH]``; ``--decisions URL`` and ``--ledger PATH`` of run/demo.

See lea_ai_audit.signoff, lea_ai_audit.ledger and lea_ai_audit.decisions. ``lea-audit verify
LEDGER`` (in commands/cards.py) checks a ledger. Only the standard library is imported at
module level.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

_LEDGER_HELP = ("append-only ledger of assessments and sign-offs (default: $LEA_AUDIT_LEDGER, "
                "else ledger.jsonl beside the report directory; 'off' for none)")


def _passphrase(var: str | None) -> str | None:
    if not var:
        return None
    from ..errors import InputError

    value = os.environ.get(var)
    if value is None:
        raise InputError(f"the environment variable {var!r} is not set",
                         f"export {var}=... with the key's passphrase (never on the command "
                         "line)")
    if not value:
        raise InputError(f"the environment variable {var!r} is empty",
                         "set it to the key's passphrase")
    return value


# -- run / demo ------------------------------------------------------------------------------
def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decisions", metavar="URL",
                   help="the officers' decision log to review (SQLAlchemy URL such as "
                        "sqlite:///decisions.db or postgresql://..., or a sqlite file path)")
    p.add_argument("--ledger", metavar="PATH", help=_LEDGER_HELP)


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    url = getattr(args, "decisions", None)
    if not url:
        return {}
    from ..decisions import DecisionLog

    return {"decisions": DecisionLog(url, create=False)}


def after_audit(args: argparse.Namespace, report: Any, out: Any) -> str:
    from ..errors import LeaAuditError
    from ..ledger import default_ledger_path, record_assessment

    path = default_ledger_path(out, ledger=getattr(args, "ledger", None))
    if path is None:
        return ""
    try:
        entry = record_assessment(path, report, report_dir=out)
    except LeaAuditError as exc:
        return f"ledger: NOT WRITTEN — {exc}"
    return f"ledger: {path} (entry {entry['seq']})"


# -- keygen / signoff ------------------------------------------------------------------------
def cmd_keygen(args: argparse.Namespace) -> int:
    from ..signoff import generate_keys

    kp = generate_keys(args.reviewer, role=args.role, out=args.out,
                       trust_store=args.trust_store,
                       passphrase=_passphrase(args.passphrase_env))
    mode = oct(kp.private_key.stat().st_mode & 0o777)
    print(f"private key: {kp.private_key} (mode {mode[2:]}"
          + (", protected by a passphrase" if kp.encrypted else ", no passphrase") + ")")
    print(f"public key: {kp.public_key} ({kp.identity.fingerprint})")
    if kp.trust_store is not None:
        print(f"trust store: {kp.trust_store} (reviewer {kp.identity.reviewer!r}, role "
              f"{kp.identity.role!r})")
    else:
        print("not in a trust store yet: give the .pub file to whoever keeps it")
    return 0


def _rerender_cards(report_dir: Path) -> str:
    """Re-render the cards beside the report so they show the new sign-off, but only if that
    changes nothing else in the card (a card rendered with other metadata is left alone)."""
    import json

    from ..signoff import card_body_digest, card_digest

    if not (report_dir / "card.json").is_file():
        return ""
    try:
        from .._io import atomic_write_text
        from ..cards import FORMATS, build_card, render

        before = card_digest(report_dir)
        card = build_card(report_dir, report_dir=report_dir, figures=True)
        texts = {fmt: render(card, fmt) for fmt in FORMATS}
        if card_body_digest(json.loads(texts["json"])) != before:
            return ("model card: not re-rendered (it was made with other metadata); run "
                    "`lea-audit card` to show the sign-off")
        for fmt, text in texts.items():
            if (report_dir / f"card.{FORMATS[fmt][1]}").exists():
                atomic_write_text(report_dir / f"card.{FORMATS[fmt][1]}", text)
        return "model card: updated with the sign-off"
    except Exception as exc:  # the sign-off stands even if the card cannot be re-rendered
        return f"model card: not updated ({type(exc).__name__}: {exc}); run `lea-audit card`"


def cmd_signoff(args: argparse.Namespace) -> int:
    from ..signoff import sign_report

    waive = [w for group in args.waive or [] for w in group]
    ledger: Any = args.ledger
    signed = sign_report(args.report, key=args.key, reviewer=args.reviewer,
                         decision=args.decision, comment=args.comment or "", role=args.role,
                         expires=args.expires, model_path=args.model, waive=waive or None,
                         justification=args.justification,
                         passphrase=_passphrase(args.passphrase_env),
                         trust_store=args.trust_store, ledger=ledger)
    rec = signed.record
    print(f"sign-off: {rec['decision']} by {rec['reviewer']} ({rec['role']}) at "
          f"{rec['signed_at']}" + (f", expires {rec['expires_at']}" if rec["expires_at"] else "")
          + (f", waiving {', '.join(rec['waiver']['requirements'])}" if rec["waiver"] else ""))
    print(f"record: {signed.path}")
    if signed.ledger_error:
        print(f"ledger: NOT WRITTEN — {signed.ledger_error}")
    elif signed.ledger is not None:
        print(f"ledger: {signed.ledger}")
    if signed.tracked is not None or signed.tracking_note:
        print(f"mlflow: {signed.tracking_note}")
    text = _rerender_cards(signed.path.parent.parent)
    if text:
        print(text)
    return 0


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("keygen", help="make a reviewer's Ed25519 key pair for signing off",
                       description="Write DIR/<reviewer>.key (private, mode 0600) and "
                                   "DIR/<reviewer>.pub (id, role, public key); with "
                                   "--trust-store, add the reviewer to that YAML trust store.")
    p.add_argument("--reviewer", required=True, help="the reviewer's id")
    p.add_argument("--role", required=True,
                   help="their role, e.g. model-risk-officer or data-protection-officer")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write the key pair")
    p.add_argument("--trust-store", metavar="YAML", help="add the reviewer to this trust store")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="protect the private key with the passphrase in this environment "
                        "variable")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser("signoff", help="sign an audit report: approve or reject it",
                       description="Write a signed record into REPORT_DIR/signoffs/, bound to "
                                   "this report's id and digest (and the model file with "
                                   "--model, and the model card), and log it to the ledger "
                                   "and the report's MLflow run.")
    p.add_argument("report", help="report.json or the directory holding it")
    p.add_argument("--key", required=True, metavar="FILE", help="your private key (.key)")
    p.add_argument("--reviewer", required=True, help="your reviewer id")
    p.add_argument("--decision", required=True, choices=["approve", "reject"])
    p.add_argument("--comment", metavar="TEXT", help="what you reviewed (a reject needs one)")
    p.add_argument("--role", help="your role (default: from the trust store or the .pub file "
                                  "beside the key)")
    p.add_argument("--expires", metavar="DAYS|DATE",
                   help="the sign-off stops counting after DAYS days or on an ISO date")
    p.add_argument("--model", metavar="PATH", help="the model file: sign its SHA-256 too")
    p.add_argument("--waive", action="append", nargs="+", metavar="REQ",
                   help="approve a failed audit anyway: each failed requirement id")
    p.add_argument("--justification", metavar="TEXT", help="why the waived requirements may be "
                                                           "accepted")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="environment variable holding the key's passphrase")
    p.add_argument("--trust-store", metavar="YAML",
                   help="refuse to sign unless the key is the reviewer's key there")
    p.add_argument("--ledger", metavar="PATH", help=_LEDGER_HELP)
    kit.add_verbose(p)
    p.set_defaults(func=cmd_signoff)


# -- gate ------------------------------------------------------------------------------------
def add_gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--require-signoff", action="store_true",
                   help="open only if the policy's sign-off rule holds (default: 2 approvals by "
                        "distinct reviewers in the trust store, not the author, no rejection)")
    p.add_argument("--trust-store", metavar="YAML",
                   help="the reviewers whose sign-offs count (with --require-signoff)")
    p.add_argument("--model", metavar="PATH",
                   help="the model file to deploy: every approval must have signed it")
    p.add_argument("--accept-waivers", action="store_true",
                   help="open for a FAILED audit when the sign-off rule holds and every "
                        "approval signed a waiver of each failed requirement (default: a "
                        "failed audit keeps the gate closed, waiver or not)")


def gate_reasons(args: argparse.Namespace, report: Any) -> list[str]:
    from ..errors import InputError

    if not getattr(args, "require_signoff", False):
        if (getattr(args, "trust_store", None) or getattr(args, "model", None)
                or getattr(args, "accept_waivers", False)):
            raise InputError("--trust-store, --model and --accept-waivers only count with "
                             "--require-signoff",
                             "add --require-signoff")
        return []
    if not getattr(args, "trust_store", None):
        raise InputError("--require-signoff needs the trust store",
                         "pass --trust-store trust.yaml (built by `lea-audit keygen "
                         "--trust-store`)")
    from ..signoff import evaluate_signoffs, load_signoffs

    path = Path(args.report)
    report_dir = path if path.is_dir() else path.parent
    verdict = evaluate_signoffs(report, load_signoffs(report_dir), args.trust_store,
                                model_path=args.model, report_dir=report_dir)
    args._signoff_verdict = verdict
    return list(verdict.reasons)


def gate_waivers(args: argparse.Namespace, report: Any) -> list[str]:
    """Failed requirements waived by every counted approval, when the sign-off rule holds.

    cli.py opens the gate for a failed audit only with --accept-waivers and when every failed
    requirement is here.
    """
    if not getattr(args, "accept_waivers", False):
        return []
    verdict = getattr(args, "_signoff_verdict", None)
    return list(verdict.waived) if verdict is not None and verdict.ok else []


def after_gate(args: argparse.Namespace, report: Any, opened: bool, reasons: list[str]
               ) -> str:
    verdict = getattr(args, "_signoff_verdict", None)
    if verdict is None:
        return ""
    lines = []
    if verdict.ok:
        lines.append(f"sign-off: the policy's rule holds — approved by "
                     f"{', '.join(verdict.approvals)}")
    else:
        lines.append(f"sign-off: the policy's rule does not hold ({len(verdict.approvals)} "
                     "valid approval(s))")
    if verdict.waived:
        lines.append(f"sign-off: failed requirement(s) {', '.join(verdict.waived)} waived by "
                     f"every approval, with a signed justification"
                     + ("" if opened else " — the gate stays closed on the audit's status "
                        "(a waiver cannot open it in this version)"))
    return "\n".join(lines)
