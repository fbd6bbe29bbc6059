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

from .._io import strict_json

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
    p.add_argument("--sign-key", metavar="FILE",
                   help="sign the audit as its author with this key (`lea-audit keygen`): "
                        "writes attestation.json; the four-eyes rule then compares keys")
    p.add_argument("--sign-passphrase-env", metavar="VAR",
                   help="environment variable holding the --sign-key passphrase")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    key = getattr(args, "sign_key", None)
    if key:  # a missing key or wrong passphrase is bad input before the audit writes anything
        from ..signoff import load_private_key

        load_private_key(key, passphrase=_passphrase(getattr(args, "sign_passphrase_env", None)))
    url = getattr(args, "decisions", None)
    if not url:
        return {}
    from ..decisions import DecisionLog

    return {"decisions": DecisionLog(url, create=False)}


def after_audit(args: argparse.Namespace, report: Any, out: Any) -> str:
    from ..errors import LeaAuditError
    from ..ledger import default_ledger_path, record_assessment

    lines = []
    path = default_ledger_path(out, ledger=getattr(args, "ledger", None))
    entry = None
    if path is not None:
        try:
            entry = record_assessment(path, report, report_dir=out)
            lines.append(f"ledger: {path} (entry {entry['seq']}, head {entry['hash']})")
        except LeaAuditError as exc:
            lines.append(f"ledger: NOT WRITTEN — {exc}")
    key = getattr(args, "sign_key", None)
    if key:
        from ..attest import attest_report

        head = {"seq": entry["seq"], "hash": entry["hash"], "path": str(path)} if entry else None
        att = attest_report(out, key=key, passphrase=_passphrase(
            getattr(args, "sign_passphrase_env", None)), ledger_head=head)
        lines.append(f"attestation: {att} (the audit, signed by its author)")
    return "\n".join(lines)


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


def _rerender_cards(report_dir: Path, trust_store: Any = None) -> str:
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
        old = strict_json((report_dir / "card.json").read_text(encoding="utf-8"))
        card = build_card(report_dir, report_dir=report_dir, figures=True,
                          metadata=old.get("metadata") or {}, trust_store=trust_store)
        if "changes" in old:
            card.data["changes"] = old["changes"]
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
        e = signed.ledger_entry or {}
        print(f"ledger: {signed.ledger} (entry {e.get('seq')}, head {e.get('hash')})")
    if signed.tracked is not None or signed.tracking_note:
        print(f"mlflow: {signed.tracking_note}")
    text = _rerender_cards(signed.path.parent.parent, args.trust_store)
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
    p.add_argument("--decision", required=True, choices=["approve", "reject", "withdraw"],
                   help="withdraw voids your own earlier sign-off of this report (signed, "
                        "recorded in the ledger)")
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
                   help="refuse to sign unless the key is the reviewer's key there (the card "
                        "is re-rendered with the sign-offs verified against it)")
    p.add_argument("--ledger", metavar="PATH", help=_LEDGER_HELP)
    kit.add_verbose(p)
    p.set_defaults(func=cmd_signoff)

    p = sub.add_parser("attest", help="sign an audit as its author (attestation.json)",
                       description="Sign the audit in REPORT_DIR as the person or service that "
                                   "ran it: a DSSE envelope holding an in-toto Statement over "
                                   "the digests of the report, evidence, model card, model, "
                                   "data and policy. `run --sign-key` does this at once.")
    p.add_argument("report", help="the report directory")
    p.add_argument("--key", required=True, metavar="FILE", help="the author's private key")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="environment variable holding the key's passphrase")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser("checkpoint", help="sign the ledger's head (a signed checkpoint)",
                       description="Sign the ledger's current head hash and length and write "
                                   "LEDGER.checkpoint.json (or --out). `verify` and `gate` "
                                   "then detect any rewrite or truncation below it. Keep "
                                   "copies where the ledger's writers cannot delete them.")
    p.add_argument("ledger", help="the ledger file")
    p.add_argument("--key", required=True, metavar="FILE", help="the signing key")
    p.add_argument("--passphrase-env", metavar="VAR",
                   help="environment variable holding the key's passphrase")
    p.add_argument("--out", metavar="FILE", help="where to write it")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser("trust", help="show a trust store: reviewers, roles, key fingerprints, "
                                     "its own SHA-256")
    p.add_argument("action", choices=["show"])
    p.add_argument("store", metavar="TRUST.yaml")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_trust)


def cmd_attest(args: argparse.Namespace) -> int:
    from ..attest import attest_report

    path = attest_report(args.report, key=args.key, passphrase=_passphrase(args.passphrase_env))
    print(f"attestation: {path}")
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    from ..ledger import sign_checkpoint

    path, body = sign_checkpoint(args.ledger, key=args.key,
                                 passphrase=_passphrase(args.passphrase_env), out=args.out)
    print(f"checkpoint: {path} ({body['entries']} entries, head {body['head']})")
    return 0


def cmd_trust(args: argparse.Namespace) -> int:
    from ..signoff import load_trust_store

    store = load_trust_store(args.store)
    print(f"trust store {store.path}: SHA-256 {store.sha256} (pin it: lea-audit gate "
          f"--trust-store-sha256 {store.sha256})")
    for ident in store.reviewers.values():
        print(f"  {ident.reviewer} ({ident.role}): {ident.fingerprint}")
    for pol in store.policies:
        print(f"  allowed policy {pol.get('path')}: {pol.get('sha256')}")
    return 0


# -- gate ------------------------------------------------------------------------------------
def add_gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--require-signoff", action="store_true",
                   help="open only if the evidence chain holds: the audit signed by its "
                        "author, the policy pinned, the model file, the model card, the "
                        "ledger, and the policy's sign-off rule (default: 2 approvals by "
                        "distinct reviewers in the trust store, not the author, no rejection)")
    p.add_argument("--trust-store", metavar="YAML",
                   help="the reviewers whose sign-offs count (with --require-signoff)")
    p.add_argument("--model", metavar="PATH",
                   help="the model file to deploy: every approval must have signed it")
    p.add_argument("--accept-waivers", action="store_true",
                   help="open for a FAILED audit when the sign-off rule holds and every "
                        "approval signed a waiver of each failed requirement (default: a "
                        "failed audit keeps the gate closed, waiver or not)")
    p.add_argument("--trust-store-sha256", metavar="HEX",
                   help="the trust store's SHA-256 as you pinned it (`lea-audit trust show`): "
                        "any other store closes the gate")
    p.add_argument("--ledger", metavar="PATH",
                   help="the ledger that recorded the audit and its sign-offs (default: "
                        "$LEA_AUDIT_LEDGER, else ledger.jsonl beside the report directory)")
    p.add_argument("--expect-head", metavar="HASH",
                   help="a ledger head published earlier: closed if the ledger no longer "
                        "holds it (rewritten or cut off)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="a signed ledger checkpoint (`lea-audit checkpoint`; default "
                        "<ledger>.checkpoint.json when present)")
    p.add_argument("--allow-unsigned-audit", action="store_true",
                   help="gate an audit that its author did not sign (recorded as an opt-out)")
    p.add_argument("--no-model-check", action="store_true",
                   help="gate an audit made with a model without its model file (recorded as "
                        "an opt-out)")
