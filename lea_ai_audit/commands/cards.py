"""``lea-audit card``, ``export`` and ``verify``; ``--metadata`` of run/demo; cards after an audit.

See lea_ai_audit.cards. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._io import strict_json


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", metavar="YAML",
                   help="model-card metadata: name, owner, intended_use, out_of_scope_uses, "
                        "users, training_data, ethical_considerations, contact, and the words of "
                        "the card's sentences: persons, outcome, no_outcome, flag (see "
                        "model_cards/example-metadata.yaml)")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "metadata", None):
        return {}
    from ..cards import load_metadata

    return {"metadata": load_metadata(args.metadata)}


def write_outputs(args: argparse.Namespace, report: Any, folder: Any) -> str:
    from ..cards import write_cards

    paths = write_cards(report, folder, report_dir=folder)
    return "model card: " + ", ".join(str(p) for p in paths.values())


def _check_card_out(args: argparse.Namespace) -> None:
    """--out must not overwrite an input of the card, nor a file lea-audit did not write
    (without --out, a PDF goes to card.pdf beside the report: the card's own place)."""
    from .._io import check_output

    if not args.out:
        return
    base = Path(args.report)
    report_file = base / "report.json" if base.is_dir() else base
    inputs = [p for p in (report_file, args.metadata, args.compare, args.trust_store)
              if p and Path(p).is_file()]
    check_output(args.out, option="--out", kind=args.format, inputs=inputs, force=args.force)


def cmd_card(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text
    from ..cards import build_card, render

    if args.write:
        return _write_in_place(args)
    _check_card_out(args)
    card = build_card(args.report, metadata=args.metadata, previous=args.compare,
                      figures=args.format in ("html", "pdf"), trust_store=args.trust_store)
    if args.format == "pdf":
        from ..cards import render_html
        from ..cards.pdf import write_pdf

        base = Path(args.report)
        target = args.out or (base if base.is_dir() else base.parent) / "card.pdf"
        path = write_pdf(render_html(card), target, str(card.data["report"]["report_id"]))
        print(f"model card (pdf): {path}")
        return 0
    text = render(card, args.format)
    if args.out:
        path = atomic_write_text(args.out, text)
        print(f"model card ({args.format}): {path}")
    else:
        sys.stdout.write(text)
    return 0


def _write_in_place(args: argparse.Namespace) -> int:
    """Re-render card.html, card.md and card.json beside the report, keeping the card's
    metadata (and its comparison), so the card shows the sign-offs as they verify now."""
    import json

    from ..cards import FORMATS, build_card, render
    from ..errors import InputError
    from ..signoff import card_body_digest, card_digest

    if args.out or args.compare:
        raise InputError("--write re-renders the cards beside the report",
                         "leave out --out and --compare")
    base = Path(args.report)
    base = base if base.is_dir() else base.parent
    old: dict[str, Any] = {}
    if (base / "card.json").is_file():
        try:
            old = strict_json((base / "card.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError("card.json beside the report cannot be read",
                             "render it anew with --metadata") from exc
        if not isinstance(old, dict) or not isinstance(old.get("metadata") or {}, dict):
            raise InputError("card.json beside the report is not a model card",
                             "render it anew with --metadata")
    before = card_digest(base)
    card = build_card(base, report_dir=base, figures=True, trust_store=args.trust_store,
                      metadata=args.metadata if args.metadata else (old.get("metadata") or {}))
    if "changes" in old:
        card.data["changes"] = old["changes"]
    texts = {fmt: render(card, fmt) for fmt in FORMATS}
    after = card_body_digest(json.loads(texts["json"]))
    from .._io import atomic_write_text

    for fmt, text in texts.items():
        atomic_write_text(base / f"card.{FORMATS[fmt][1]}", text)
    print(f"model card: {base}/card.html, card.md, card.json re-rendered"
          + ("" if before in (None, after) else " — its content changed: earlier sign-offs "
             "that bound the card no longer count"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .._io import check_output
    from ..cards.bundle import export_bundle, verify_bundle

    d = Path(args.directory)
    inside = Path(args.out).resolve().is_relative_to(d.resolve()) if d.is_dir() else False
    if inside:
        from ..errors import InputError

        raise InputError(f"--out {args.out!r} is inside the audit folder it packs",
                         "write the bundle outside the audit folder")
    check_output(args.out, option="--out", kind="zip", force=args.force,
                 inputs=[p for p in (args.metadata,) if p and Path(p).is_file()])
    path = export_bundle(args.directory, args.out, metadata=args.metadata)
    check = verify_bundle(path)
    print(f"bundle: {path} ({check.files} files, report {check.report_id}, "
          f"{(check.status or '?').upper()}); check it with `lea-audit verify {path} "
          "--trust-store trust.yaml`")
    return 0 if check.intact else 1


def cmd_verify(args: argparse.Namespace) -> int:
    import zipfile

    from ..errors import InputError

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"no file {str(path)!r}",
                         "pass a bundle (.zip from `lea-audit export`) or a ledger file")
    if zipfile.is_zipfile(path):
        from ..cards.bundle import verify_bundle

        check = verify_bundle(path, trust_store=args.trust_store)
        what = f"report {check.report_id} ({(check.status or '?').upper()})"
        if check.ok:
            signed = ([f"the audit signed by {check.author}"] if check.author else []) + (
                [f"approved by {', '.join(check.approvals)}"] if check.approvals else []) + (
                [f"rejected by {', '.join(check.rejections)}"] if check.rejections else [])
            print(f"bundle OK: {what}: {'; '.join(signed)}; every digest matches "
                  f"({check.files} files)")
            return 0
        if check.intact:
            print(f"bundle NOT VERIFIED: {what}: the digests match, but nothing in it is "
                  + ("signed by a key of the trust store" if check.signatures_checked else
                     "verified as signed (pass --trust-store to check the signatures)")
                  + ": anyone could have written it")
            return 1
        print(f"bundle NOT OK: {len(check.problems)} problem(s)")
        for prob in check.problems:
            print(f"  - {prob}")
        return 1
    try:
        from ..ledger import verify_ledger
    except ImportError:
        raise InputError(f"{str(path)!r} is not a bundle, and this installation cannot check "
                         "ledgers", "pass the .zip written by `lea-audit export`") from None
    from ..ledger import checkpoint_path, verify_checkpoint

    result = verify_ledger(path, expect_head=args.expect_head)
    problems = list(result.problems)
    proved = []
    cp = Path(args.checkpoint) if args.checkpoint else checkpoint_path(path)
    if args.checkpoint or (cp.is_file() and args.trust_store):
        if not args.trust_store:
            raise InputError("--checkpoint needs the trust store that holds its key",
                             "add --trust-store trust.yaml")
        more, who = verify_checkpoint(path, cp, args.trust_store)
        problems += more
        if not more:
            proved.append(f"the checkpoint signed by {who} holds")
    if args.expect_head and not result.problems:
        proved.append("the expected head is in it")
    if not problems:
        print(f"ledger OK: {result.entries} entries, the hash chain is intact"
              + (f"; {'; '.join(proved)}" if proved else
                 " (nothing anchors it: a rewritten or cut-off ledger also reads intact; pass "
                 "--expect-head or --checkpoint)") + f"; head {result.head}")
        return 0
    print(f"ledger NOT OK: {len(problems)} problem(s) in {result.entries} entries")
    for prob in problems:
        print(f"  - {prob}")
    return 1


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("card", help="render the model card of a report (html, md or json)",
                       description="Render a model card from report.json alone (and its "
                                   "directory: plots, sign-offs).")
    p.add_argument("report", help="report.json or the directory holding it")
    p.add_argument("--format", choices=["html", "md", "json", "pdf"], default="html",
                   help="html (self-contained), md, json, or pdf (A4, printed by headless "
                        "Chromium: needs Playwright and Chromium; default html)")
    p.add_argument("--out", metavar="FILE", help="write here (default: standard output; for "
                                                 "pdf: card.pdf beside the report)")
    p.add_argument("--compare", metavar="OLD_REPORT",
                   help="an earlier report: add 'what changed since the previous version'")
    p.add_argument("--metadata", metavar="YAML", help="model-card metadata (overrides the "
                                                      "report's)")
    p.add_argument("--trust-store", metavar="YAML",
                   help="show as counted only the sign-offs verified against this trust store")
    p.add_argument("--write", action="store_true",
                   help="re-render card.html, card.md and card.json beside the report (keeps "
                        "the card's metadata)")
    p.add_argument("--force", action="store_true",
                   help="overwrite an --out file that lea-audit did not write (an input is "
                        "never overwritten)")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("export", help="one archive for the Innovation Hub: report, cards, "
                                      "evidence, sign-offs, sha256 manifest")
    p.add_argument("directory", metavar="DIR", help="the report directory (--out of run)")
    p.add_argument("--out", required=True, metavar="BUNDLE.zip", help="archive to write")
    p.add_argument("--metadata", metavar="YAML", help="re-render the cards with this "
                                                      "metadata")
    p.add_argument("--force", action="store_true",
                   help="overwrite an --out file that is not a lea-audit bundle")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check a bundle (.zip) or a sign-off ledger",
                       description="A .zip from `lea-audit export`: every file against the "
                                   "manifest's SHA-256 and the report's own digests. Any other "
                                   "file: the hash chain of a ledger. Exit 0 intact, 1 not.")
    p.add_argument("file", help="bundle.zip or ledger file")
    p.add_argument("--trust-store", metavar="YAML",
                   help="verify the signatures in a bundle (or a ledger checkpoint) against it")
    p.add_argument("--expect-head", metavar="HASH",
                   help="ledger: a head hash published earlier (detects a cut-off tail)")
    p.add_argument("--checkpoint", metavar="FILE",
                   help="ledger: a signed checkpoint (`lea-audit checkpoint`)")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_verify)
