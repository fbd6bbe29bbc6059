"""``lea-audit card``, ``export`` and ``verify``; ``--metadata`` of run/demo; cards after an audit.

See lea_ai_audit.cards. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metadata", metavar="YAML",
                   help="model-card metadata: owner, intended_use, out_of_scope_uses, users, "
                        "training_data, ethical_considerations, contact (see "
                        "model_cards/example-metadata.yaml)")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "metadata", None):
        return {}
    from ..cards import load_metadata

    return {"metadata": load_metadata(args.metadata)}


def after_audit(args: argparse.Namespace, report: Any, out: Any) -> str:
    from ..cards import write_cards

    paths = write_cards(report, out, report_dir=out)
    return "model card: " + ", ".join(str(p) for p in paths.values())


def cmd_card(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text
    from ..cards import build_card, render

    card = build_card(args.report, metadata=args.metadata, previous=args.compare,
                      figures=args.format == "html")
    text = render(card, args.format)
    if args.out:
        path = atomic_write_text(args.out, text)
        print(f"model card ({args.format}): {path}")
    else:
        sys.stdout.write(text)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..cards.bundle import export_bundle, verify_bundle

    path = export_bundle(args.directory, args.out, metadata=args.metadata)
    check = verify_bundle(path)
    print(f"bundle: {path} ({check.files} files, report {check.report_id}, "
          f"{(check.status or '?').upper()}); check it with `lea-audit verify {path}`")
    return 0 if check.ok else 1


def cmd_verify(args: argparse.Namespace) -> int:
    import zipfile

    from ..errors import InputError

    path = Path(args.file)
    if not path.is_file():
        raise InputError(f"no file {str(path)!r}",
                         "pass a bundle (.zip from `lea-audit export`) or a ledger file")
    if zipfile.is_zipfile(path):
        from ..cards.bundle import verify_bundle

        check = verify_bundle(path)
        if check.ok:
            print(f"bundle OK: {check.files} files, every SHA-256 matches its manifest; "
                  f"report {check.report_id} ({(check.status or '?').upper()}) intact")
            return 0
        print(f"bundle NOT OK: {len(check.problems)} problem(s)")
        for prob in check.problems:
            print(f"  - {prob}")
        return 1
    try:
        from ..ledger import verify_ledger
    except ImportError:
        raise InputError(f"{str(path)!r} is not a bundle, and this installation cannot check "
                         "ledgers", "pass the .zip written by `lea-audit export`") from None
    result = verify_ledger(path)
    if result.ok:
        print(f"ledger OK: {result.entries} entries, the hash chain is intact")
        return 0
    print(f"ledger NOT OK: {len(result.problems)} problem(s) in {result.entries} entries")
    for prob in result.problems:
        print(f"  - {prob}")
    return 1


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("card", help="render the model card of a report (html, md or json)",
                       description="Render a model card from report.json alone (and its "
                                   "directory: plots, sign-offs).")
    p.add_argument("report", help="report.json or the directory holding it")
    p.add_argument("--format", choices=["html", "md", "json"], default="html",
                   help="html (self-contained), md or json (default html)")
    p.add_argument("--out", metavar="FILE", help="write here (default: standard output)")
    p.add_argument("--compare", metavar="OLD_REPORT",
                   help="an earlier report: add 'what changed since the previous version'")
    p.add_argument("--metadata", metavar="YAML", help="model-card metadata (overrides the "
                                                      "report's)")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_card)

    p = sub.add_parser("export", help="one archive for the Innovation Hub: report, cards, "
                                      "evidence, sign-offs, sha256 manifest")
    p.add_argument("directory", metavar="DIR", help="the report directory (--out of run)")
    p.add_argument("--out", required=True, metavar="BUNDLE.zip", help="archive to write")
    p.add_argument("--metadata", metavar="YAML", help="re-render the cards with this "
                                                      "metadata")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="check a bundle (.zip) or a sign-off ledger",
                       description="A .zip from `lea-audit export`: every file against the "
                                   "manifest's SHA-256 and the report's own digests. Any other "
                                   "file: the hash chain of a ledger. Exit 0 intact, 1 not.")
    p.add_argument("file", help="bundle.zip or ledger file")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_verify)
