"""MLflow from the CLI: ``--tracking-uri``/``--no-track`` of run/demo, ``lea-audit sync``,
``gate --model-uri`` (tags and the ``audited`` alias on a registered model version).

See lea_ai_audit.tracking. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .._io import strict_json


def add_audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-uri", metavar="URI",
                   help="log the audit to this MLflow tracking URI (default: "
                        "MLFLOW_TRACKING_URI, else sqlite in ~/.lea-ai-audit)")
    p.add_argument("--no-track", action="store_true",
                   help="do not log the audit to MLflow (also LEA_AUDIT_TRACKING=off)")
    _add_timeout(p)


def _add_timeout(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tracking-timeout", metavar="SECONDS", type=float,
                   help="seconds the MLflow upload may take before the report is kept and "
                        "marked pending (default LEA_AUDIT_TRACKING_TIMEOUT, else 60)")


def audit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    if not getattr(args, "no_track", False):
        from ..tracking import tracking_timeout

        # a bad --tracking-timeout or LEA_AUDIT_TRACKING_TIMEOUT is bad input before the audit
        tracking_timeout(getattr(args, "tracking_timeout", None))
    if getattr(args, "no_track", False) and getattr(args, "tracking_uri", None):
        from ..errors import InputError

        raise InputError("--no-track and --tracking-uri contradict each other",
                         "drop --no-track to log the audit there, or drop --tracking-uri")
    return {"track": False}  # the CLI logs after the report and cards are saved (after_audit)


def after_audit(args: argparse.Namespace, report: Any, out: Any) -> str:
    from ..tracking import log_report, tracking_disabled

    uri = getattr(args, "tracking_uri", None)
    if getattr(args, "no_track", False) or (tracking_disabled() and not uri):
        return ""
    res = log_report(out, tracking_uri=uri, timeout=getattr(args, "tracking_timeout", None))
    if res.logged:
        return f"mlflow: {res.message}"
    return f"mlflow: NOT LOGGED — {res.message}"


def cmd_sync(args: argparse.Namespace) -> int:
    from ..tracking import spool_dir, sync

    directory = args.directory or str(spool_dir())
    if args.directory is None and not Path(directory).is_dir():
        print(f"nothing to upload: {directory} does not exist")
        return 0
    results = sync(directory, tracking_uri=args.tracking_uri, timeout=args.tracking_timeout)
    if not results:
        print(f"nothing to upload under {directory}: every report there is logged")
        return 0
    failed = 0
    for r in results:
        print(f"{r.report_dir}: {'logged — ' if r.logged else 'NOT LOGGED — '}{r.message}")
        failed += not r.logged
    return 1 if failed else 0


def add_commands(sub: Any, kit: Any) -> None:
    p = sub.add_parser("sync", help="upload reports that could not be logged to MLflow",
                       description="Log every report under DIR that is marked pending "
                                   "(mlflow.pending.json) or was never logged (no "
                                   "mlflow.json). Default DIR: ~/.lea-ai-audit/pending.")
    p.add_argument("directory", metavar="DIR", nargs="?",
                   help="a report directory, or a folder of them")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking URI")
    _add_timeout(p)
    kit.add_verbose(p)
    p.set_defaults(func=cmd_sync)


def add_gate_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-uri", metavar="models:/NAME/VERSION",
                   help="record the verdict as tags on this registered model version and set "
                        "its alias (--alias) only if the gate opens")
    p.add_argument("--alias", default="audited",
                   help="the alias set when the gate opens (default audited)")
    p.add_argument("--tracking-uri", metavar="URI", help="MLflow tracking/registry URI")


def gate_reasons(args: argparse.Namespace, report: Any) -> list[str]:
    uri = getattr(args, "model_uri", None)
    if not uri:
        return []
    from ..tracking import parse_model_uri

    parse_model_uri(uri)  # a malformed URI is bad input (exit 2), before any verdict
    audited = (report.data.get("source") or {}).get("model_uri")
    if audited and str(audited).strip() != str(uri).strip():
        return [f"the report audited {audited}, not {uri}: audit that version first"]
    return []


def after_gate(args: argparse.Namespace, report: Any, opened: bool, reasons: list[str]
               ) -> str:
    uri = getattr(args, "model_uri", None)
    if not uri:
        return ""
    from ..tracking import SIDECAR_FILE, record_gate

    run_id = None
    side = Path(args.report)
    side = (side if side.is_dir() else side.parent) / SIDECAR_FILE
    if side.is_file():
        try:
            run_id = strict_json(side.read_text(encoding="utf-8")).get("run_id")
        except (OSError, ValueError):
            run_id = None
    return "registry: " + record_gate(uri, report, opened=opened, reasons=reasons,
                                      tracking_uri=getattr(args, "tracking_uri", None),
                                      alias=args.alias, run_id=run_id)
