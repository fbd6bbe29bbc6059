"""``lea-audit``: the command line. Thin: parse, call the public API, map errors to exit codes.

Exit codes: 0 pass or warn, 1 fail (or a check that could not decide a blocking requirement),
2 bad input or usage. Every input error is one line ``error: <what> — <how to fix>`` on
stderr, without a traceback unless ``--verbose``; nothing is written before the audit is done.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

_DESCRIPTION = """\
Audit law-enforcement machine-learning models against a policy pack derived from the
Council conclusions 13083/1/20 (§24-31) and the EU AI Act: group fairness with confidence
intervals, explanations (SHAP) and proxies, data quality, protection and drift, robustness,
human oversight; model cards, signed four-eyes sign-off, every audit logged to MLflow.

exit codes: 0 pass or warn, 1 fail, 2 bad input or usage
"""

_EPILOG = """\
examples:
  lea-audit demo --out audit-demo
  lea-audit run --data cases.csv --target reoffended --prediction-col flagged \\
      --score-col risk --sensitive ethnicity --sensitive sex \\
      --reference-group ethnicity=majority --out audit
  lea-audit gate audit/report.json --junit audit/junit.xml
  lea-audit signoff audit --key keys/bob.key --reviewer bob --decision approve --comment TEXT
  lea-audit gate audit --require-signoff --trust-store trust.yaml
  lea-audit policies
"""


class _Parser(argparse.ArgumentParser):
    """argparse with the house's one-line error format."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} — see `{self.prog} --help`\n")
        raise SystemExit(EXIT_USAGE)


def _key_value(text: str, what: str) -> tuple[str, str]:
    from .errors import InputError

    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise InputError(f"{what} {text!r} is not of the form name=value",
                         "write it as e.g. "
                         + ("ethnicity=majority" if "group" in what else "item=text"))
    return key.strip(), value.strip()


def _refuse_duplicate_columns(header: list[str], path: str, role: str) -> None:
    """pandas renames a repeated column ("a", "a.1") and audits the first: refuse instead."""
    from .errors import DataError

    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError(f"{role} file {path!r} has the column {name!r} more than once",
                            "give every column its own name")
        seen.add(name)


def _csv_header(p: Path, path: str, role: str, max_bytes: int | None) -> None:
    """Look at the first bytes (decompressed) before pandas reads the file: binary content,
    too many columns, a repeated column name."""
    import csv
    import io

    from ._limits import check_columns, open_text_source
    from .errors import DataError

    stream, _ = open_text_source(p, f"{role} file {path!r}", max_bytes)
    with stream:
        head = stream.read(8192)
        first = head.split(b"\n", 1)[0] if b"\n" in head else head + stream.readline(1 << 20)
    if b"\x00" in head:
        raise DataError(f"{role} file {path!r} is binary, not CSV",
                        "pass a CSV file (or a .parquet file with that suffix)")
    try:
        header = next(csv.reader(io.StringIO(first.decode("utf-8", errors="replace"))), [])
    except csv.Error:
        return  # pandas says what is wrong with it
    check_columns(len(header), f"{role} file {path!r}")
    _refuse_duplicate_columns(header, path, role)


def _read_table(path: str, role: str = "data") -> Any:
    """Read a CSV (plain or compressed) or Parquet file into a DataFrame, with clear errors and
    the limits of :mod:`lea_ai_audit._limits` (decompressed bytes, rows, columns)."""
    import pandas as pd

    from ._limits import check_parquet, limits, open_text_source
    from .errors import DataError, InputError

    p = Path(path)
    if not p.exists():
        raise InputError(f"{role} file {path!r} does not exist",
                         f"check the path (--{role})")
    if p.is_dir():
        raise InputError(f"{role} path {path!r} is a directory", "pass a .csv or .parquet file")
    if not p.is_file():  # /dev/zero, a FIFO, a socket: reading it could never end
        raise InputError(f"{role} path {path!r} is not a regular file (a device, pipe or "
                         "socket)", "pass a .csv or .parquet file")
    if p.stat().st_size == 0:
        raise DataError(f"{role} file {path!r} is empty", "export the cases again")
    lim = limits()
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("reading Parquet needs pyarrow",
                             "pip install 'lea-ai-audit[parquet]', or pass a CSV file") from None
        check_parquet(p, f"{role} file {path!r}")
        try:
            df = pd.read_parquet(p)
        except Exception as exc:
            raise DataError(f"{role} file {path!r} is not a readable Parquet file "
                            f"({type(exc).__name__})", "export it again as Parquet or CSV"
                            ) from exc
    else:
        _csv_header(p, path, role, lim.max_bytes)
        stream, _ = open_text_source(p, f"{role} file {path!r}", lim.max_bytes)
        nrows = lim.max_rows + 1 if lim.max_rows is not None else None
        try:
            with stream:
                df = pd.read_csv(stream, low_memory=False, nrows=nrows, encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"{role} file {path!r} is not UTF-8 text ({exc.reason})",
                            "save it as UTF-8 CSV") from exc
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{role} file {path!r} cannot be read as CSV: "
                            f"{str(exc).strip().splitlines()[0]}",
                            "check the delimiter (a comma) and the quoting") from exc
        if lim.max_rows is not None and df.shape[0] > lim.max_rows:
            raise DataError(f"{role} file {path!r} has more than {lim.max_rows:,} rows",
                            "audit a sample of the rows, or raise LEA_AUDIT_MAX_ROWS")
    if df.shape[0] == 0:
        raise DataError(f"{role} file {path!r} has a header but no rows",
                        "export the cases, not only the column names")
    return df


# -- output ------------------------------------------------------------------------------------
_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red", "error": "bold magenta",
          "skipped": "dim"}


def _console(stderr: bool = False) -> Any:
    from rich.console import Console
    con = Console(stderr=stderr, highlight=False, soft_wrap=False)
    if not con.is_terminal:
        con.width = max(con.width, 140)  # logs and CI: no need to wrap at 80
    return con


def _print_summary(report: Any, quiet: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    from ._text import printable

    con = _console()
    if not quiet:
        table = Table(title=f"lea-ai-audit — {escape(str(report.policy.get('id')))} "
                            f"({report.data.get('n_rows')} rows)", show_lines=False,
                      title_justify="left")
        table.add_column("requirement", no_wrap=True)
        table.add_column("blocks")
        table.add_column("status", no_wrap=True)
        table.add_column("finding", ratio=1)
        for rid, _clauses, blocking, status, msg in report.summary_rows():
            st = status.lower()
            short = msg if len(msg) <= 240 else msg[:237] + "..."
            table.add_row(escape(printable(rid)), blocking, f"[{_STYLE[st]}]{status}[/]",
                          escape(printable(short)))
        con.print(table)
    st = report.status.value
    con.print(f"audit [{_STYLE[st]}]{st.upper()}[/] in {report.duration_s:.2f} s")


def _progress_runner(enabled: bool) -> tuple[Any, Any]:
    """A rich progress display on stderr; in a log (not a terminal) only the model's progress
    on long work, one line every ``_budget.PROGRESS_EVERY`` seconds."""
    if not enabled:
        return None, None
    if not _console(stderr=True).is_terminal:
        return None, _log_progress()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    prog = Progress(TextColumn("[bold]auditing[/] {task.description}"), BarColumn(),
                    TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                    console=_console(stderr=True), transient=True)
    task = prog.add_task("", total=None)
    state = {"req": ""}

    def update(i: int, total: int, req_id: str, result: Any) -> None:
        from rich.markup import escape

        state["req"] = escape(req_id)
        prog.update(task, total=total, completed=i, description=state["req"])

    def note(text: str) -> None:  # the model's calls on long work (lea_ai_audit._budget)
        prog.update(task, description=f"{state['req']} — {text}")

    update.note = note  # type: ignore[attr-defined]
    return prog, update


def _log_progress() -> Any:
    """Progress for a log: no per-check lines, a line on long model work now and then."""
    from ._budget import PROGRESS_EVERY

    last = [time.monotonic()]

    def update(i: int, total: int, req_id: str, result: Any) -> None:
        return None

    def note(text: str) -> None:
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY:
            last[0] = now
            sys.stderr.write(f"lea-audit: still auditing — {text}\n")
            sys.stderr.flush()

    update.note = note  # type: ignore[attr-defined]
    return update


def _extensions() -> list[Any]:
    """The modules of ``lea_ai_audit.commands`` (see its docstring), in name order."""
    import importlib
    import pkgutil

    from . import commands

    return [importlib.import_module(f"{commands.__name__}.{m.name}")
            for m in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)]


def _hook(name: str) -> list[Any]:
    return [getattr(m, name) for m in _extensions() if hasattr(m, name)]


def _extension_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for fn in _hook("audit_kwargs"):
        kwargs.update(fn(args) or {})
    return kwargs


def _run_audit(args: argparse.Namespace, data: Any, **kwargs: Any) -> Any:
    from . import audit

    prog, update = _progress_runner(not args.quiet)
    if prog is None:
        return audit(data, progress=update, **kwargs)
    with prog:
        return audit(data, progress=update, **kwargs)


def _attestations(items: Sequence[str] | None) -> dict[str, str]:
    return dict(_key_value(t, "attestation") for t in items or [])


def _write_folder(args: argparse.Namespace, report: Any, folder: Path, out: Path
                  ) -> list[str]:
    """The report and the files beside it (``write_outputs`` hooks: the cards), written into
    ``folder``, the new output folder that becomes ``out``; the lines to print."""
    lines = []
    report.save(folder)
    for fn in _hook("write_outputs"):
        if text := fn(args, report, folder):
            lines.append(text.replace(str(folder), str(out)) if folder != out else text)
    return lines


def _finish(args: argparse.Namespace, report: Any, out: Path, extra: str = "",
            lines: list[str] | None = None) -> int:
    """Save the audit in ``out`` (switched whole), then the ``after_audit`` hooks (ledger,
    attestation, MLflow), the summary and the exit code. ``lines``: the folder is written and
    in place already (the demo writes its cases and model into the same new folder)."""
    from ._io import staged_folder
    from .gate import evaluate_gate, write_junit

    if getattr(args, "junit", None):
        write_junit(report, args.junit)  # first: if it cannot be written, the old report stays
    if lines is None:
        with staged_folder(out) as folder:  # the whole folder switched at once: old or new
            lines = _write_folder(args, report, folder, out)
    path = out / "report.json"
    lines = lines + [text for fn in _hook("after_audit") if (text := fn(args, report, out))]
    _print_summary(report, quiet=args.quiet)
    con = _console()
    con.print(f"report: {path}{extra}")
    for text in lines:
        con.print(text, markup=False)
    verdict = evaluate_gate(report)
    return verdict.exit_code


# -- commands ----------------------------------------------------------------------------------
def _input_files(args: argparse.Namespace, *names: str) -> list[str]:
    """The files among the command's options ``names`` (what an output must not overwrite)."""
    out = []
    for n in names:
        v = getattr(args, n, None)
        for item in (v if isinstance(v, list) else [v]):
            if isinstance(item, str) and item and "://" not in item and Path(item).is_file():
                out.append(item)
    return out


def _check_audit_outputs(args: argparse.Namespace) -> None:
    """Before an audit runs: --junit must not overwrite an input or a file not ours."""
    from ._io import check_output

    if getattr(args, "junit", None):
        inputs = _input_files(args, "data", "reference", "policy", "metadata", "schema",
                              "population", "model", "ledger", "sign_key")
        inputs.append(str(Path(args.out) / "report.json"))
        check_output(args.junit, option="--junit", kind="junit", inputs=inputs,
                     force=getattr(args, "force", False))


def cmd_demo(args: argparse.Namespace) -> int:
    from ._io import atomic_write_text, staged_folder
    from .datasets import FEATURES, make_demo

    _check_audit_outputs(args)

    t0 = time.perf_counter()
    con = _console(stderr=True)
    with con.status("generating synthetic case-triage data and training the demo model"):
        demo = make_demo(args.rows, bias=args.bias, seed=args.seed)
    if not args.quiet:
        con.print(f"demo data: {len(demo.train)} training and {len(demo.test)} audited cases, "
                  f"injected bias {args.bias:g}, seed {args.seed} "
                  f"({time.perf_counter() - t0:.1f} s)")
    import skops.io as sio

    from ._io import atomic_write_bytes

    kwargs = _extension_kwargs(args)  # bad options (e.g. metadata) before anything is written
    # the card's words for the demo's cases; --metadata overrides them key by key
    kwargs["metadata"] = {**DEMO_METADATA, **(kwargs.get("metadata") or {})}
    out = Path(args.out)
    with staged_folder(out) as folder:  # the model, cases, report and cards switched at once
        # the model to deploy: its SHA-256 is in the report
        model_file = atomic_write_bytes(folder / "model.skops", sio.dumps(demo.model))
        report = _run_audit(args, demo.test, target="reoffended",
                            sensitive=["ethnicity", "sex", "age_band"], model=demo.model,
                            model_file=str(model_file),
                            features=FEATURES, reference=demo.train,
                            reference_groups={"ethnicity": "majority"}, policy=args.policy,
                            author=args.author, seed=args.seed,
                            attestations=_attestations(args.attest), **kwargs)
        if folder != out:  # the report names the model where it will be
            report.subject["model"]["file"] = str(out / "model.skops")
        atomic_write_text(folder / "cases.csv", demo.test.to_csv(index=False))
        lines = _write_folder(args, report, folder, out)
    return _finish(args, report, out, lines=lines,
                   extra=f"\naudited cases (with the model's risk and flagged columns): "
                         f"{out / 'cases.csv'}")


#: the demo's model-card metadata (synthetic cases, not a real deployment)
DEMO_METADATA = {
    "name": "Demo risk tool (synthetic data)",
    "description": "A gradient-boosting model that flags people at risk of reoffending, "
                   "trained and audited on synthetic cases with an injected bias.",
    "intended_use": "Show what an audit finds; not for any decision about a person.",
    "persons": "people", "outcome": "reoffended", "no_outcome": "did not reoffend",
    "flag": "flagged",
}


def cmd_run(args: argparse.Namespace) -> int:
    from ._io import sha256_file
    from .errors import InputError

    missing = [f"--{o}" for o in ("data", "target", "sensitive") if not getattr(args, o)]
    if missing:
        raise InputError(f"`lea-audit run` needs {', '.join(missing)}",
                         "pass them, or set them under `run:` in lea-audit.yaml")
    _check_audit_outputs(args)

    if not args.prediction_col and not args.score_col and not args.model:
        raise InputError("nothing to audit: no --model, --prediction-col or --score-col",
                         "name the column with the tool's decisions (0/1) and/or its scores, "
                         "or pass the model file (--model model.skops)")
    if args.model and (args.prediction_col or args.score_col):
        raise InputError("both --model and --prediction-col/--score-col were given",
                         "audit either the model or the tool's exported columns, not both")
    model = model_file = None
    model_info: dict[str, Any] = {}
    if args.model:
        from .models import load_model
        model, model_info = load_model(args.model, trust=args.trust_model,
                                       tracking_uri=args.tracking_uri)
        model_file = model_info.get("path")
    features = [f.strip() for item in args.features or [] for f in item.split(",") if f.strip()]
    data = _read_table(args.data)
    reference = _read_table(args.reference, "reference") if args.reference else None
    ref_groups = dict(_key_value(t, "reference group") for t in args.reference_group or [])
    checks = [c for item in args.checks or [] for c in item.split(",") if c.strip()] or None
    report = _run_audit(
        args, data, target=args.target, sensitive=args.sensitive,
        prediction=args.prediction_col, score=args.score_col, threshold=args.threshold,
        model=model, model_file=model_file, features=features or None,
        positive_label=args.positive_label, reference=reference, reference_groups=ref_groups,
        policy=args.policy, checks=checks, author=args.author, seed=args.seed,
        attestations=_attestations(args.attest),
        data_source={"file": str(args.data), "file_sha256": sha256_file(args.data),
                     **({"model_uri": model_info["uri"]} if "uri" in model_info else {})},
        **_extension_kwargs(args))
    return _finish(args, report, Path(args.out))


def cmd_gate(args: argparse.Namespace) -> int:
    import dataclasses

    from rich.markup import escape

    from . import gate as gate_mod
    from ._io import check_output
    from .errors import InputError

    if not args.report:
        raise InputError("no audit to gate", "pass the audit folder (or its report.json), or "
                                             "set `report:` under `gate:` in lea-audit.yaml")
    if not getattr(args, "require_signoff", False):
        # the configuration's evidence files serve `gate --require-signoff`; a plain gate
        # (the audit's own verdict) leaves them unused instead of refusing them
        for dest in getattr(args, "from_config", ()):
            if dest in ("trust_store", "trust_store_sha256", "model", "ledger", "expect_head",
                        "checkpoint"):
                setattr(args, dest, None)
    if args.junit:  # an input, or a file lea-audit did not write, is never overwritten
        rp = Path(args.report)
        check_output(args.junit, option="--junit", kind="junit", force=args.force,
                     inputs=[rp / "report.json" if rp.is_dir() else rp, *_input_files(
                         args, "trust_store", "ledger", "checkpoint", "model")])
    decision = gate_mod.evaluate(
        args.report, require_signoff=getattr(args, "require_signoff", False),
        trust_store=getattr(args, "trust_store", None),
        trust_store_sha256=getattr(args, "trust_store_sha256", None),
        model=getattr(args, "model", None),
        no_model_check=getattr(args, "no_model_check", False),
        ledger=getattr(args, "ledger", None), expect_head=getattr(args, "expect_head", None),
        checkpoint=getattr(args, "checkpoint", None),
        allow_unsigned_audit=getattr(args, "allow_unsigned_audit", False),
        accept_waivers=getattr(args, "accept_waivers", False))
    report = decision.report
    extra = [r for fn in _hook("gate_reasons") for r in fn(args, report) or []]
    if extra:
        decision = dataclasses.replace(decision, opened=False, by_waiver=False, checks=(
            *decision.checks, gate_mod.GateCheck("extensions", False, tuple(extra))))
    if args.junit:
        write = gate_mod.write_junit
        write(report, args.junit, decision)
    _print_summary(report, quiet=args.quiet)
    con = _console()
    lines = [text for fn in _hook("after_gate")
             if (text := fn(args, report, decision.opened, list(decision.reasons)))]
    status = decision.status.value.upper()
    if decision.by_waiver:
        con.print(f"gate [yellow]OPEN by signed waiver[/]: the audit {status}; waived: "
                  f"{escape(', '.join(decision.waived))}")
    elif decision.opened:
        con.print(f"gate [green]OPEN[/]: the audit {status}")
    else:
        audit_ok = decision.checks[0].ok
        con.print(f"gate [bold red]CLOSED[/]: the audit {status}" + (" but" if audit_ok
                                                                      else ""))
        for r in decision.reasons:
            con.print(f"  - {escape(r)}")
    for c in decision.checks[1:]:
        if c.ok and c.note:  # one line each, never wrapped: CI logs are grepped
            con.print(f"{c.name}: {c.note}", markup=False, soft_wrap=True)
    sv = decision.signoff
    if sv is not None and sv.waived:
        con.print(f"sign-off: failed requirement(s) {', '.join(sv.waived)} waived by every "
                  "approval, with a signed justification" + (
                      "" if decision.opened else " — the gate stays closed on the audit's "
                      "status unless you pass --accept-waivers"), markup=False)
    for o in decision.opt_outs:
        con.print(f"opt-out: {o}", markup=False, soft_wrap=True)
    for text in lines:
        con.print(text, markup=False)
    if not decision.opened:  # the evidence chain's reasons (the audit's are in the table)
        for c in decision.checks[1:]:
            for r in c.reasons if not c.ok else ():
                sys.stderr.write(f"gate closed: {r}\n")
    return decision.exit_code


def cmd_policies(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from .policy import list_policies, load_policy

    con = _console()
    packs = [load_policy(args.policy)] if args.policy else list_policies()
    for p in packs:
        con.print(f"[bold]{escape(p.id)}[/] {escape(p.version)} — {escape(p.title)}")
        if p.source:
            con.print(f"  source: {escape(p.source)}")
        for r in p.requirements:
            flag = "blocking" if r.blocking else "advisory"
            con.print(escape(f"  - {r.id} [{r.check}; {flag}] {'; '.join(r.clauses)}"))
    return EXIT_PASS


# -- parser ------------------------------------------------------------------------------------
def _add_verbose(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks on errors")


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="the configuration file (default: $LEA_AUDIT_CONFIG, ./lea-audit.yaml, "
                        "or [tool.lea-audit] in ./pyproject.toml); the command line wins")


def _add_force(p: argparse.ArgumentParser) -> None:
    p.add_argument("--force", action="store_true",
                   help="overwrite an output file that lea-audit did not write (an input of "
                        "the command is never overwritten)")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--policy", help="policy pack id or YAML file (default: "
                                    "eu-council-2020-internal-security)")
    p.add_argument("--author", help="who runs the audit (may not sign it off later)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random sample (default 0)")
    p.add_argument("--attest", action="append", metavar="ITEM=TEXT",
                   help="a statement for a manual attestation item (repeatable)")
    p.add_argument("--junit", metavar="FILE", help="also write JUnit XML")
    _add_force(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress or table")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="lea-audit", description=_DESCRIPTION, epilog=_EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"lea-ai-audit {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("demo", help="audit a model trained on synthetic police data",
                       description="Generate synthetic police case-triage data with an "
                                   "injected bias, train a model on the biased record, audit it.")
    p.add_argument("--out", default="audit-demo", help="output directory (default audit-demo)")
    p.add_argument("--bias", type=float, default=0.6,
                   help="injected bias in [0, 1]: 0 passes, the default 0.6 fails")
    p.add_argument("--rows", type=int, default=40_000, help="cases to generate (default 40000)")
    _add_common(p)
    _add_verbose(p)
    for fn in _hook("add_audit_options"):
        fn(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="audit predictions and scores in a CSV/Parquet file")
    p.add_argument("--data", help="CSV or Parquet file with one case per row (required, here "
                                  "or in the configuration file)")
    p.add_argument("--target", help="column with the observed outcome (0/1) (required)")
    p.add_argument("--model", metavar="FILE|URI",
                   help="the model to audit: a .skops file, or an MLflow URI "
                        "models:/NAME/VERSION or runs:/ID/PATH logged with "
                        "serialization_format='skops' (pickles, and MLflow models in the "
                        "cloudpickle/pickle format, only with --trust-model)")
    p.add_argument("--trust-model", action="store_true",
                   help="load a pickle/joblib model file, an MLflow model logged in the "
                        "sklearn flavour's cloudpickle/pickle format, or skops types not "
                        "trusted by default (runs code from the model: only for models you "
                        "trust)")
    p.add_argument("--features", action="append", metavar="COLS",
                   help="the model's input columns, comma-separated (default: the model's "
                        "feature_names_in_)")
    p.add_argument("--prediction-col", help="column with the tool's decision (0/1)")
    p.add_argument("--score-col", help="column with the tool's risk score")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="flag a case when score >= threshold (a score exactly at it is "
                        "flagged): with --score-col alone, or a --model's predict_proba "
                        "(default 0.5, for probabilities: give scores on another scale, "
                        "e.g. 0-100, their own cut-off)")
    p.add_argument("--positive-label", help="the target's positive value if not 0/1")
    p.add_argument("--sensitive", action="append",
                   help="a sensitive attribute column (repeatable; required)")
    p.add_argument("--reference-group", action="append", metavar="ATTR=VALUE",
                   help="group to compare against (default: the largest group)")
    p.add_argument("--reference", metavar="FILE", help="training/reference data (CSV/Parquet)")
    p.add_argument("--checks", action="append", metavar="PREFIX",
                   help="run only checks whose id starts with PREFIX (e.g. fairness)")
    p.add_argument("--out", default="audit", help="output directory (default audit)")
    _add_common(p)
    _add_config(p)
    _add_verbose(p)
    for fn in _hook("add_audit_options"):
        fn(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("gate", help="exit 0 if an audit passed, 1 if not (for CI)")
    p.add_argument("report", nargs="?",
                   help="report.json (or the directory holding it); or `report:` under "
                        "`gate:` in the configuration file")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML, one test per requirement")
    _add_force(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no table")
    _add_config(p)
    _add_verbose(p)
    for fn in _hook("add_gate_options"):
        fn(p)
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("policies", help="list the policy packs and their requirements")
    p.add_argument("policy", nargs="?", help="show one pack (id or YAML file)")
    _add_verbose(p)
    p.set_defaults(func=cmd_policies)

    kit = argparse.Namespace(add_verbose=_add_verbose, console=_console,
                             print_summary=_print_summary, read_table=_read_table,
                             EXIT_PASS=EXIT_PASS, EXIT_FAIL=EXIT_FAIL, EXIT_USAGE=EXIT_USAGE)
    for fn in _hook("add_commands"):
        fn(sub, kit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``lea-audit``; returns the exit code.

    Everything it prints passes through :class:`lea_ai_audit._text.PrintableStream`: control
    characters from data (a crafted group label) cannot erase or forge a terminal or CI log
    line."""
    import signal
    import threading

    from ._text import PrintableStream

    # MLflow 3 sends usage telemetry to its maintainers unless told not to: a police audit
    # tool sends nothing anywhere it was not asked to (MLFLOW_DISABLE_TELEMETRY=false or
    # DO_NOT_TRACK set by the user are respected; see README "MLflow")
    if "DO_NOT_TRACK" not in os.environ:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(out), PrintableStream(err)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = out, err


_STOPPED = ("nothing is half-written (an output folder holds its previous audit, whole); run "
            "the command again")


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that the command stops where it stands."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated


def _error_line(text: str) -> str:
    """One line of printable text (an error message from data may hold anything)."""
    from ._text import printable

    return printable(" ".join(str(text).split("\n")))


def _main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    for fn in _hook("rewrite_argv"):
        args_list = fn(args_list)
    args = parser.parse_args(args_list)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from .errors import LeaAuditError

    try:
        from .config import apply_config

        used = apply_config(parser, args_list, args)
        if used is not None and not getattr(args, "quiet", False):
            sys.stderr.write(f"config: {used}\n")
        return int(args.func(args))
    except LeaAuditError as exc:
        if args.verbose:
            traceback.print_exc()
        sys.stderr.write(f"error: {_error_line(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write(f"error: interrupted (SIGINT) — {_STOPPED}\n")
        return 130
    except _Terminated:
        sys.stderr.write(f"error: stopped by SIGTERM — {_STOPPED}\n")
        return 143
    except MemoryError:
        sys.stderr.write("error: out of memory — audit a sample of the rows, or use more memory\n")
        return EXIT_USAGE
    except Exception as exc:  # an internal failure: still one line unless --verbose
        if args.verbose:
            traceback.print_exc()
        first = str(exc).splitlines()[0] if str(exc) else ""
        sys.stderr.write(f"error: internal error {type(exc).__name__}: {_error_line(first)} — "
                         "re-run with "
                         "--verbose and report it with the traceback\n")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
