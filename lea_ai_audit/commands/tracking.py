"""``lea-audit sync`` and the MLflow options of ``run`` and ``demo`` (see lea_ai_audit.tracking)."""

from __future__ import annotations

import argparse
from typing import Any


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else a local "
                        "sqlite store mlflow.db in the current directory)")
    p.add_argument("--no-track", action="store_true",
                   help="do not log the audit to MLflow (also LEA_AUDIT_TRACKING=off)")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {}


def after_audit(args: argparse.Namespace, report: Any, out: Any) -> str:
    from ..tracking import log_report, tracking_enabled

    if getattr(args, "no_track", False) or not tracking_enabled():
        return ""
    return log_report(out, tracking_uri=getattr(args, "tracking_uri", None)).describe(out)


def cmd_sync(args: argparse.Namespace) -> int:
    from ..tracking import sync

    results = sync(args.directory, tracking_uri=args.tracking_uri)
    if not results:
        print(f"nothing to upload under {args.directory}: every report there is logged")
        return 0
    failed = 0
    for d, r in results:
        print(r.describe(d))
        failed += not r.ok
    return 1 if failed else 0


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("sync", help="upload reports that could not be logged to MLflow",
                       description="Log every report under DIR that is marked pending "
                                   "(mlflow.pending.json) or was never logged.")
    p.add_argument("directory", metavar="DIR", help="a report directory, or a tree of them")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    kit.add_verbose(p)
    p.set_defaults(func=cmd_sync)
