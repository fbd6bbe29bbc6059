"""MLflow: every audit logged as a run; sync of reports that could not be logged; registry tags.

A report directory (``report.json``, its ``evidence/`` and the model cards) becomes one MLflow
run: params (policy, thresholds, sample sizes), metrics (every number of every result, under
MLflow-legal names), tags (status, policy, digests, author, report id) and artifacts (the
directory's files at the same relative paths, so downloaded artifacts are again a report
directory). The run is nested under the active run when a training pipeline has one open.

Where runs go
-------------
1. ``tracking_uri=`` when given (``lea-audit --tracking-uri``);
2. the active run's tracking URI, when a run is open (the audit is nested under it);
3. ``MLFLOW_TRACKING_URI`` or ``mlflow.set_tracking_uri(...)``;
4. ``tracking-uri`` in the project's lea-audit.yaml (CLI);
5. otherwise a local store ``sqlite:///~/.lea-ai-audit/mlflow.db`` with artifacts in
   ``~/.lea-ai-audit/artifacts`` (``LEA_AUDIT_HOME`` moves that folder). Browse it with
   ``mlflow ui --backend-store-uri sqlite:///$HOME/.lea-ai-audit/mlflow.db``.

The experiment is ``MLFLOW_EXPERIMENT_NAME`` or ``lea-ai-audit``. ``LEA_AUDIT_TRACKING=off``
turns the default logging of :func:`lea_ai_audit.audit` off (an explicit URI still logs).

A model loaded from a ``models:/`` or ``runs:/`` URI is read from the same store
(:func:`use_tracking_uri`), so nothing lands in the working directory.

Nothing is lost: when the server cannot be reached (short timeouts, one retry) or the whole
upload takes longer than the deadline (60 s, ``LEA_AUDIT_TRACKING_TIMEOUT``), the report
stays in its directory with a marker ``mlflow.pending.json``, and ``lea-audit sync DIR``
uploads it later. A logged directory gets a sidecar ``mlflow.json`` (tracking URI, experiment
and run id); report.json itself is never modified (it may be signed). A report is logged once:
its ``lea.report_id`` tag is looked up first, so a repeated sync does not duplicate runs, and
two uploads of one directory at once take turns (a lock on the directory). No password or token
is written to a marker or sidecar; ``lea-audit sync`` takes the credentials from
``--tracking-uri``, ``MLFLOW_TRACKING_URI`` or MLflow's ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``.
A fresh local sqlite store is created once under a lock, so many audits may start at once.

Examples
--------
>>> from lea_ai_audit.tracking import log_report              # doctest: +SKIP
>>> res = log_report("audit/", tracking_uri="http://127.0.0.1:5000")
>>> res.logged, res.run_id
(True, '3f2a...')
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._io import atomic_write_text, strict_json
from .errors import InputError, LeaAuditError

__all__ = [
    "DEFAULT_EXPERIMENT",
    "PENDING_FILE",
    "SIDECAR_FILE",
    "TrackingResult",
    "TrackingWarning",
    "default_tracking_uri",
    "find_run",
    "log_report",
    "log_signoff",
    "metric_name",
    "record_gate",
    "report_metrics",
    "report_params",
    "report_tags",
    "resolve_tracking_uri",
    "spool_dir",
    "sync",
    "tracking_disabled",
    "tracking_timeout",
    "use_tracking_uri",
]

DEFAULT_EXPERIMENT = "lea-ai-audit"
SIDECAR_FILE = "mlflow.json"
PENDING_FILE = "mlflow.pending.json"
CARD_FILES = ("card.html", "card.md", "card.json")
TRACKING_ENV = "LEA_AUDIT_TRACKING"
HOME_ENV = "LEA_AUDIT_HOME"
TIMEOUT_ENV = "LEA_AUDIT_TRACKING_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
#: MLflow's limits (mlflow.utils.validation)
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
_BATCH_PARAMS = _BATCH_TAGS = 100
_BATCH_METRICS = 1000
#: short HTTP timeouts unless the user set MLflow's own variables
_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                  "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                  "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


class TrackingWarning(UserWarning):
    """An audit could not be logged to MLflow (the report is kept; see the message)."""


@dataclass(frozen=True)
class TrackingResult:
    """What :func:`log_report` did.

    ``logged`` is True when the run holds the report; otherwise ``pending`` is the marker
    that ``lea-audit sync`` reads and ``message`` says why and what to do.
    """

    logged: bool
    report_dir: str
    tracking_uri: str
    run_id: str | None = None
    experiment_id: str | None = None
    message: str = ""
    pending: str | None = None

    def __str__(self) -> str:
        return self.message


# -- configuration -----------------------------------------------------------------------------
def home_dir() -> Path:
    """``LEA_AUDIT_HOME`` or ``~/.lea-ai-audit``: the default store and the spool."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".lea-ai-audit"


def spool_dir() -> Path:
    """Where reports of ``audit()`` calls without ``out=`` wait when MLflow is unreachable."""
    return home_dir() / "pending"


def default_tracking_uri() -> str:
    """The local store used when no tracking URI is set: ``sqlite:///<home>/mlflow.db``."""
    return f"sqlite:///{(home_dir() / 'mlflow.db').resolve()}"


def tracking_disabled() -> bool:
    """True when ``LEA_AUDIT_TRACKING`` is ``off`` (or 0/false/no)."""
    return os.environ.get(TRACKING_ENV, "").strip().lower() in {"off", "0", "false", "no"}


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI to log to (see the module docstring for the order)."""
    if tracking_uri:
        return str(tracking_uri)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    import mlflow
    from mlflow.tracking import is_tracking_uri_set

    if is_tracking_uri_set():
        return str(mlflow.get_tracking_uri())
    return default_tracking_uri()


@contextlib.contextmanager
def _short_timeouts(request_timeout: float | None = None) -> Iterator[None]:
    """MLflow's HTTP retries and timeout made short, unless the user set them."""
    added = [k for k in _HTTP_DEFAULTS if k not in os.environ]
    for k in added:
        os.environ[k] = _HTTP_DEFAULTS[k]
        if k == "MLFLOW_HTTP_REQUEST_TIMEOUT" and request_timeout is not None:
            os.environ[k] = str(max(1, int(request_timeout)))
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


#: sqlite stores this process has opened (their tables exist and are migrated)
_READY_STORES: set[str] = set()
#: the URIs this process was given, by their stored form (see _usable_uri)
_KNOWN_URIS: dict[str, str] = {}


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///"):].split("?", 1)[0])


def _client(uri: str, *, timeout: float | None = None) -> Any:
    """An MlflowClient for tracking and registry at ``uri``.

    A local sqlite store is opened for the first time in this process under a lock on its
    folder: MLflow creates and migrates its tables on first use, and two processes doing that
    at once into a fresh file fail ("Online migration expected to match one row"). ``timeout``
    bounds the wait for that lock (TimeoutError).
    """
    from mlflow.tracking import MlflowClient

    _KNOWN_URIS[_stored_uri(uri)] = uri  # in memory only: credentials never reach a file
    db = _sqlite_path(uri)
    if db is None or uri in _READY_STORES:
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    from ._io import dir_lock

    with dir_lock(db.parent, timeout=timeout), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with _quiet_mlflow():  # MLflow opens (creates, migrates) the store on construction
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
    _READY_STORES.add(uri)
    return client


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow and alembic log INFO lines (creating tables, ...): keep them off stderr."""
    import logging

    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


@contextlib.contextmanager
def use_tracking_uri(tracking_uri: str | None = None) -> Iterator[str]:
    """MLflow's process-wide tracking and registry URI set to the audit's own for the block.

    Calls that take no URI (``mlflow.models.get_model_info``, ``mlflow.sklearn.load_model``,
    ``mlflow.artifacts.download_artifacts`` of a ``models:/`` URI) then read the same store as
    everything else the audit does: ``tracking_uri`` if given, else ``MLFLOW_TRACKING_URI``, else
    the local store (never MLflow's own default, a ``mlflow.db`` in the working directory).
    MLflow's globals and environment variables are restored afterwards.

    Yields the URI used.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    uri = resolve_tracking_uri(tracking_uri)
    saved = (tracking_utils._tracking_uri, registry_utils._registry_uri)
    env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    db = _sqlite_path(uri)
    if db is not None:
        _client(uri)  # the store's folder and tables, created once under the lock
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield uri
    finally:
        tracking_utils._tracking_uri, registry_utils._registry_uri = saved
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _experiment_id(client: Any, uri: str, name: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage != "active":
            client.restore_experiment(exp.experiment_id)
        return str(exp.experiment_id)
    location = None
    if uri.startswith("sqlite:///"):  # artifacts beside the database, not in the cwd
        db = Path(uri[len("sqlite:///"):])
        location = (db.parent / "artifacts").resolve().as_uri()
    try:  # the MLflow UI opens it on its model view (MLflow 3 guesses GenAI for a new one)
        return str(client.create_experiment(
            name, artifact_location=location,
            tags={"mlflow.experimentKind": "custom_model_development"}))
    except MlflowException:  # created meanwhile by another process
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return str(exp.experiment_id)


# -- names and values --------------------------------------------------------------------------
_ILLEGAL = re.compile(r"[^\w.\- /]")


def metric_name(name: str, *, taken: set[str] | None = None) -> str:
    """``name`` made legal for MLflow (metric, param or tag key), unique among ``taken``.

    MLflow accepts letters, digits, ``_ - . /`` and spaces, at most 250 characters, and no
    name that a path normalisation would change (``a//b``, ``./a``, ``a/..``). Other
    characters become ``_``; a long name is cut and ends with a digest of the original, so
    two long names stay apart. The result is added to ``taken``.

    Examples
    --------
    >>> metric_name("fpr/ethnicity & sex/minority_a & female")
    'fpr/ethnicity _ sex/minority_a _ female'
    >>> seen = set(); metric_name("a:b", taken=seen), metric_name("a;b", taken=seen)
    ('a_b', 'a_b_2')
    """
    text = _ILLEGAL.sub("_", str(name))
    parts = []
    for seg in text.split("/"):
        if not seg:
            continue
        parts.append("_" if seg in (".", "..") else seg)
    out = "/".join(parts) or "_"
    if out.startswith(".."):
        out = "_" + out
    if len(out) > MAX_KEY:
        digest = hashlib.sha256(str(name).encode("utf-8")).hexdigest()[:10]
        out = out[:MAX_KEY - 12].rstrip("/") + "_" + digest
    if taken is not None:
        base, k = out, 1
        while out in taken:
            k += 1
            suffix = f"_{k}"
            out = base[:MAX_KEY - len(suffix)].rstrip("/") + suffix
        taken.add(out)
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        f = float(value)
        return f if f == f and abs(f) != float("inf") else None
    return None


def _report_of(report: Any) -> Any:
    from .results import AuditReport

    if isinstance(report, AuditReport):
        return report
    return AuditReport.load(report)


def report_metrics(report: Any, *, full: bool = False) -> dict[str, float]:
    """The numbers of the report a reviewer reads in MLflow, under unique MLflow-legal names.

    ``audit/...``: whether the gate would open, counts per status, rows, duration. Per
    requirement (``<requirement>/...``): ``passed`` (1 or 0), its overall figures (the
    check's metrics that are not per group or per column, at most 8), and

    - for a disparity requirement: ``groups_beyond`` (groups beyond the tolerance, either
      side; the check's own ``violation_harmful_side`` counts those on the harmful side),
      ``groups_too_small``, and the worst group's ``worst_gap``, ``worst_ratio`` and
      ``worst_group_n`` (its name is the tag ``lea.worst.<requirement>``);
    - otherwise, per family of per-group metrics ``<metric>/max_gap`` (the largest spread
      between two groups of one attribute) and per family of per-column metrics
      ``<metric>/max``.

    For the default policy that is about 150 numbers instead of about 930; every number of
    every result stays in the run's report.json, and every group table is a table artifact
    (``tables/``, see :func:`report_tables`).
    ``full=True`` returns every number instead (``<requirement>/<metric>``), as the
    evaluator plugin hands them to its caller.

    Examples
    --------
    >>> m = report_metrics(report)                                    # doctest: +SKIP
    >>> m["fpr-parity/groups_beyond"], m["fpr-parity/worst_gap"]      # doctest: +SKIP
    (13.0, 0.3441)
    """
    rep = _report_of(report)
    taken: set[str] = set()
    out: dict[str, float] = {}
    out[metric_name("audit/passed", taken=taken)] = 1.0 if rep.passed else 0.0
    for status, n in rep.counts().items():
        out[metric_name(f"audit/n_{status}", taken=taken)] = float(n)
    n_rows = _number(rep.data.get("n_rows"))
    if n_rows is not None:
        out[metric_name("audit/n_rows", taken=taken)] = n_rows
    out[metric_name("audit/duration_s", taken=taken)] = float(rep.duration_s)
    for c in rep.checks:
        items = c.metrics.items() if full else _compact(c)
        for key, value in items:
            v = _number(value)
            if v is not None:
                out[metric_name(f"{c.requirement_id}/{key}", taken=taken)] = v
    return out


#: overall figures per requirement in the compact metrics
MAX_OVERALL = 8
#: numbers that say how a check ran (its sample, seed, background), not what it found: they
#: stay in the tables and the report, not among the compact metrics
_SETTING = re.compile(r"seed|sample|background|players|^n_rows$|^rows_|family_error|"
                      r"decision_confidence")


def _worst(c: Any) -> tuple[str, dict[str, Any]] | None:
    """(grouping, row) of the group furthest beyond on the harmful side (else on either side)
    of a disparity result's verdict tables; None without one."""
    from .cards.harm import verdict_tables

    rows = [(e.name.split(":", 1)[-1], r) for e, rs in verdict_tables(c) for r in rs
            if "diff" in r and r.get("verdict") not in ("reference", "insufficient")
            and _number(r.get("diff")) is not None]
    if not rows:
        return None
    harmful = [x for x in rows if x[1].get("side") in ("harmful", "higher", "lower")]
    return max(harmful or rows, key=lambda x: abs(float(x[1]["diff"])))


def _compact(c: Any) -> list[tuple[str, Any]]:
    from .cards.harm import BEYOND, verdict_tables

    out: list[tuple[str, Any]] = [("passed", 1.0 if c.status.value == "pass" else 0.0)]
    overall = [(k, v) for k, v in c.metrics.items()
               if "/" not in k and not _SETTING.search(k) and _number(v) is not None]
    out += overall[:MAX_OVERALL]
    tables = [(e, rs) for e, rs in verdict_tables(c) if "diff" in rs[0]]
    if tables:
        rows = [r for _, rs in tables for r in rs if r.get("verdict") != "reference"]
        out += [("groups_beyond", sum(r.get("verdict") in BEYOND for r in rows)),
                ("groups_too_small", sum(r.get("verdict") == "insufficient" for r in rows))]
        worst = _worst(c)
        if worst is not None:
            row = worst[1]
            out += [("worst_gap", row.get("diff")), ("worst_ratio", row.get("ratio")),
                    ("worst_group_n", row.get("denominator", row.get("n")))]
        return out
    per_column: dict[str, list[float]] = {}
    per_group: dict[str, dict[str, list[float]]] = {}
    for k, value in c.metrics.items():
        v = _number(value)
        parts = k.split("/")
        if v is None or len(parts) < 2:
            continue
        if len(parts) == 2:
            per_column.setdefault(parts[0], []).append(v)
        else:
            per_group.setdefault("/".join(parts[:-2]), {}).setdefault(parts[-2], []).append(v)
    for fam, vals in per_column.items():
        out.append((f"{fam}/max", max(vals)))
    for fam, by_attr in per_group.items():
        gaps = [max(vs) - min(vs) for vs in by_attr.values() if len(vs) > 1]
        if gaps:
            out.append((f"{fam}/max_gap", max(gaps)))
    return out


def report_tables(report: Any) -> dict[str, dict[str, Any]]:
    """Every table of the report as an MLflow table: ``tables/<requirement>/<name>.json`` ->
    ``{"columns": [...], "data": [[...], ...]}`` (pandas' ``orient="split"``, what
    ``mlflow.load_table`` reads and the MLflow UI shows)."""
    from .results import safe_filename

    rep = _report_of(report)
    out: dict[str, dict[str, Any]] = {}
    for c in rep.checks:
        for e in c.evidence:
            if e.kind != "table" or not isinstance(e.data, Mapping):
                continue
            stem = safe_filename(e.name.replace(":", "_").replace(" & ", "_x_")) or "table"
            path = f"tables/{safe_filename(c.requirement_id) or 'requirement'}/{stem}.json"
            k = 1
            while path in out:
                k += 1
                path = f"tables/{safe_filename(c.requirement_id)}/{stem}_{k}.json"
            out[path] = {"columns": [str(x) for x in e.data.get("columns", [])],
                         "data": [list(r) for r in e.data.get("rows", [])]}
    return out


def _flat(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)
    elif value is not None:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        out[prefix] = text


def report_params(report: Any) -> dict[str, str]:
    """Params of the run: policy, seed, sample sizes, threshold, and every check's parameters.

    Check parameters are ``<requirement>.<param>``; values longer than MLflow allows are cut.
    """
    rep = _report_of(report)
    raw: dict[str, str] = {}
    _flat("policy.id", rep.policy.get("id"), raw)
    _flat("policy.version", rep.policy.get("version"), raw)
    _flat("policy.settings", rep.policy.get("settings") or {}, raw)
    _flat("seed", rep.seed, raw)
    _flat("data.n_rows", rep.data.get("n_rows"), raw)
    ref = rep.data.get("reference")
    if isinstance(ref, Mapping):
        _flat("data.reference.n_rows", ref.get("n_rows"), raw)
    for key in ("threshold", "prediction_source", "target", "positive_label"):
        _flat(f"subject.{key}", rep.subject.get(key), raw)
    sens = rep.subject.get("sensitive")
    if sens:
        raw["subject.sensitive"] = ", ".join(str(s) for s in sens)
    for c in rep.checks:
        raw[f"{c.requirement_id}.check"] = c.check_id
        for k, v in c.params.items():
            _flat(f"{c.requirement_id}.{k}", v, raw)
    taken: set[str] = set()
    return {metric_name(k, taken=taken): v[:MAX_PARAM_VALUE] for k, v in raw.items()}


def _md(text: Any) -> str:
    """``text`` safe inside a Markdown table cell of the run's description (MLflow renders it):
    no markup, links or HTML from data."""
    out = re.sub(r"[\\`*_{}\[\]<>()#+!|~]", lambda m: "\\" + m.group(0), str(text))
    return " ".join(out.split())[:300]


def _worst_text(c: Any) -> str:
    w = _worst(c)
    if w is None:
        return ""
    grouping, row = w
    n = row.get("denominator", row.get("n"))
    return (f"{grouping}: {row.get('group')} ({row.get('verdict')}, difference "
            f"{float(row['diff']):+.3f}, n={n})")


def _summary_note(rep: Any) -> str:
    """The run's description (``mlflow.note.content``, Markdown): the verdict, what was
    audited, a table of the requirements with the worst group of each disparity, and where the
    model card is."""
    model = rep.subject.get("model")
    what = (model.get("class") or model.get("uri") or model.get("path")) \
        if isinstance(model, Mapping) else rep.subject.get("prediction_source")
    lines = [f"## lea-ai-audit: {rep.status.value.upper()}", "",
             f"Policy **{_md(rep.policy.get('id'))} {_md(rep.policy.get('version'))}**; "
             f"{_md(rep.data.get('n_rows'))} cases; model {_md(what or 'not named')}; "
             f"report {_md(rep.report_id)}; author {_md(rep.author or 'not named')}.", "",
             "The officer's model card is the artifact **card.html** (also card.md, "
             "card.json); every group table is under **tables/**. A sign-off is valid only "
             "as verified by `lea-audit gate`.", "",
             "| requirement | status | clauses | worst group | finding |",
             "|---|---|---|---|---|"]
    for c in rep.checks:
        lines.append(f"| {_md(c.requirement_id)} | {c.status.value.upper()} | "
                     f"{_md('; '.join(c.clauses))} | {_md(_worst_text(c))} | "
                     f"{_md(c.message)[:200]} |")
    text = "\n".join(lines)
    if len(text) > MAX_TAG_VALUE:
        text = text[:MAX_TAG_VALUE - 60].rsplit("\n", 1)[0] + "\n\n(cut: see card.md)"
    return text


def report_tags(report: Any) -> dict[str, str]:
    """Tags of the run: overall status, policy, report id and digest, data and model digests,
    author, and the status of each requirement (``lea.requirement.<id>``)."""
    rep = _report_of(report)
    tags: dict[str, str] = {
        "lea.status": rep.status.value,
        "lea.passed": "true" if rep.passed else "false",
        "lea.report_id": rep.report_id,
        "lea.report.sha256": rep.digest(),
        "lea.report.created_at": rep.created_at,
        "lea.schema_version": rep.schema_version,
    }
    raw: dict[str, str] = {}
    _flat("lea.policy.id", rep.policy.get("id"), raw)
    _flat("lea.policy.version", rep.policy.get("version"), raw)
    _flat("lea.author", rep.author, raw)
    _flat("lea.data.sha256", rep.data.get("sha256"), raw)
    ref = rep.data.get("reference")
    if isinstance(ref, Mapping):
        _flat("lea.data.reference.sha256", ref.get("sha256"), raw)
    source = rep.data.get("source")
    if isinstance(source, Mapping):
        _flat("lea.data.source", source, raw)
    model = rep.subject.get("model")
    if isinstance(model, Mapping):
        _flat("lea.model", model, raw)
    for c in rep.checks:
        raw[f"lea.requirement.{c.requirement_id}"] = c.status.value
        worst = _worst_text(c)
        if worst:
            raw[f"lea.worst.{c.requirement_id}"] = worst
    tags.update(raw)
    tags["mlflow.runName"] = (f"{rep.status.value.upper()} {rep.policy.get('id', '')} "
                              f"{rep.created_at[:19]}").strip()
    tags["mlflow.note.content"] = _summary_note(rep)
    taken: set[str] = set()
    return {(k if k.startswith("mlflow.") else metric_name(k, taken=taken)):
            str(v)[:MAX_TAG_VALUE] for k, v in tags.items()}


# -- logging -----------------------------------------------------------------------------------
def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _log_values(client: Any, run_id: str, *, params: Mapping[str, str],
                metrics: Mapping[str, float], tags: Mapping[str, str]) -> None:
    import time

    from mlflow.entities import Metric, Param, RunTag

    now = int(time.time() * 1000)
    for chunk in _chunks([Param(k, v) for k, v in params.items()], _BATCH_PARAMS):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks([RunTag(k, v) for k, v in tags.items()], _BATCH_TAGS):
        client.log_batch(run_id, tags=chunk)
    for chunk in _chunks([Metric(k, v, now, 0) for k, v in metrics.items()], _BATCH_METRICS):
        client.log_batch(run_id, metrics=chunk)


def _artifact_files(base: Path, rep: Any) -> list[tuple[Path, str]]:
    """(file, artifact folder) for report.json, the cards, evidence files and sign-offs."""
    files: list[tuple[Path, str]] = [(base / "report.json", "")]
    files += [(base / name, "") for name in (*CARD_FILES, "attestation.json")
              if (base / name).is_file()]
    for e in rep.files():
        rel = Path(str(e.data.get("path", "")))
        p = (base / rel).resolve()
        if base.resolve() in p.parents and p.is_file():
            files.append((p, rel.parent.as_posix()))
    sign = base / "signoffs"
    if sign.is_dir():
        files += [(p, "signoffs") for p in sorted(sign.glob("*.json")) if p.is_file()]
    return files


def _write_cards_if_missing(base: Path, rep: Any, tmp: Path) -> list[tuple[Path, str]]:
    """Cards missing from ``base`` are rendered into ``tmp`` (``base`` is not changed)."""
    missing = [n for n in CARD_FILES if not (base / n).is_file()]
    if not missing:
        return []
    from .cards import write_cards

    formats = [n.split(".", 1)[1] for n in missing]
    paths = write_cards(rep, tmp, report_dir=base, formats=formats)
    return [(Path(p), "") for p in paths.values()]


def find_run(report_id: str, *, tracking_uri: str | None = None,
             experiment: str | None = None) -> Any:
    """The finished MLflow run of report ``report_id`` (``mlflow.entities.Run``) or None.

    Examples
    --------
    >>> run = find_run(report.report_id, tracking_uri=uri)           # doctest: +SKIP
    >>> run.data.tags["lea.status"]                                  # doctest: +SKIP
    'fail'
    """
    uri = resolve_tracking_uri(tracking_uri)
    with _short_timeouts():
        client = _client(uri)
        exp = client.get_experiment_by_name(
            experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT)
        ids = [exp.experiment_id] if exp is not None else []
        return _find_logged(client, ids, report_id)


def _find_logged(client: Any, experiment_ids: list[str], report_id: str) -> Any:
    if not experiment_ids or not re.fullmatch(r"[0-9a-zA-Z_-]+", report_id or ""):
        return None
    runs = client.search_runs(experiment_ids,
                              filter_string=f"tags.`lea.report_id` = '{report_id}' "
                                            "and attributes.status = 'FINISHED'",
                              max_results=1)
    return runs[0] if runs else None


def _close_half_logged(client: Any, exp_id: str, report_id: str, run_id: str) -> None:
    """Mark FAILED the runs of this report left unfinished by an earlier attempt (a server lost
    mid-run), pointing at the complete run, so nobody reads a half-logged one as the record."""
    if not re.fullmatch(r"[0-9a-zA-Z_-]+", report_id or ""):
        return
    with contextlib.suppress(Exception):
        for r in client.search_runs([exp_id], f"tags.`lea.report_id` = '{report_id}' "
                                              "and attributes.status != 'FINISHED'"):
            if r.info.run_id != run_id:
                client.set_tag(r.info.run_id, "lea.superseded_by", run_id)
                if r.info.status == "RUNNING":
                    client.set_terminated(r.info.run_id, "FAILED")


def _write_pending(base: Path, info: dict[str, Any]) -> Path:
    path = base / PENDING_FILE
    old: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        old = strict_json(path.read_text(encoding="utf-8"))
    return atomic_write_text(path, json.dumps({**old, **info}, indent=2, ensure_ascii=False)
                             + "\n")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = strict_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_NO_CONNECTION = ("NewConnectionError", "Connection refused", "Max retries exceeded",
                  "timed out", "Name or service not known", "ConnectionError")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if any(s in text or s in type(exc).__name__ for s in _NO_CONNECTION):
        return "no connection: refused, unknown host or timed out"
    lines = text.splitlines()
    return f"{type(exc).__name__}: {(lines[0] if lines else '')[:200]}"


def tracking_timeout(timeout: float | None = None) -> float:
    """Seconds one audit may spend logging to MLflow: ``timeout``, else
    ``LEA_AUDIT_TRACKING_TIMEOUT``, else 60. After it the report is kept and marked pending."""
    if timeout is None:
        raw = os.environ.get(TIMEOUT_ENV, "").strip()
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                raise InputError(f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
                                 f"set {TIMEOUT_ENV} to e.g. 60, or unset it") from None
        else:
            timeout = DEFAULT_TIMEOUT
    if not timeout > 0 or timeout != timeout or timeout == float("inf"):
        raise InputError(f"the tracking timeout must be a positive number of seconds, got "
                         f"{timeout!r}", "pass e.g. --tracking-timeout 60")
    return float(timeout)


class _Expired(Exception):
    """The tracking deadline passed (raised in the logging thread at its next step)."""


def _run_with_deadline(fn: Any, seconds: float, state: dict[str, Any]) -> Any:
    """``fn()`` in a daemon thread, waited for ``seconds``; after that :class:`_Expired` (the
    thread stops at its next step, see ``state["expired"]``, and marks its run FAILED)."""
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="lea-audit-tracking", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        state["expired"] = True
        raise _Expired(f"the tracking deadline of {seconds:g} s passed (a slow or stalled "
                       f"server; {TIMEOUT_ENV} or --tracking-timeout sets it)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def log_report(report_dir: str | os.PathLike[str], *, tracking_uri: str | None = None,
               experiment: str | None = None, parent_run_id: str | None = None,
               nested: bool = True, run_name: str | None = None,
               timeout: float | None = None) -> TrackingResult:
    """Log the report in ``report_dir`` as an MLflow run; never raises for an unreachable server.

    Parameters
    ----------
    report_dir : path
        A directory written by ``lea-audit run`` or ``audit(..., out=...)``.
    tracking_uri : str, optional
        Where to log; default see the module docstring.
    experiment : str, optional
        Experiment name; default ``MLFLOW_EXPERIMENT_NAME`` or ``lea-ai-audit``.
    parent_run_id : str, optional
        Nest the run under this run. By default (``nested=True``) under the active run.
    run_name : str, optional
        Default ``<STATUS> · <policy> · <model> · <report id>``.
    timeout : float, optional
        Seconds the whole upload may take (default :func:`tracking_timeout`: 60, or
        ``LEA_AUDIT_TRACKING_TIMEOUT``); after them the report is marked pending.

    Returns
    -------
    TrackingResult
        ``logged`` and ``run_id``; when not logged, ``pending`` names the marker written in
        ``report_dir`` and ``message`` says how to upload it later (``lea-audit sync``).

    Raises
    ------
    lea_ai_audit.errors.ReportError
        When ``report_dir`` holds no readable report.

    Notes
    -----
    Two uploads of one report directory at once (two ``lea-audit sync``) run one after the
    other (a lock on the directory); the second finds the first's run by its report id, so a
    report has one run.

    Examples
    --------
    >>> res = log_report("audit", tracking_uri="sqlite:///mlflow.db")   # doctest: +SKIP
    >>> res.logged
    True
    """
    base = Path(report_dir)
    rep = _report_of(base)
    seconds = tracking_timeout(timeout)
    exp_name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT
    exp_id: str | None = None
    import mlflow

    active = mlflow.active_run() if nested and not parent_run_id else None
    if active is not None and not tracking_uri:
        uri = str(mlflow.get_tracking_uri())
        parent_run_id, exp_id = active.info.run_id, str(active.info.experiment_id)
    else:
        uri = resolve_tracking_uri(tracking_uri)
    state: dict[str, Any] = {"expired": False, "run_id": None}
    end = time.monotonic() + seconds

    def step() -> None:
        if state["expired"]:
            raise _Expired("deadline passed")

    def upload() -> tuple[str, str]:
        from ._io import dir_lock

        client = _client(uri, timeout=max(0.1, end - time.monotonic()))
        with dir_lock(base, timeout=max(0.1, end - time.monotonic())):
            step()
            eid = exp_id if exp_id is not None else _experiment_id(client, uri, exp_name)
            step()
            run_id = _upload_run(client, base, rep, eid, step=step, state=state,
                                 run_name=run_name, parent_run_id=parent_run_id)
            step()
            atomic_write_text(base / SIDECAR_FILE, json.dumps(
                {"tracking_uri": _stored_uri(uri), "experiment_id": eid, "run_id": run_id,
                 "report_id": rep.report_id,
                 "logged_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2) + "\n")
            with contextlib.suppress(FileNotFoundError):
                (base / PENDING_FILE).unlink()
            return run_id, eid

    try:
        with _short_timeouts(min(seconds, float(_HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"]))):
            run_id, exp_id = _run_with_deadline(upload, seconds, state)
    except Exception as exc:  # unreachable server, refused write, deadline...: keep the report
        if state["run_id"] is not None and not state["expired"]:
            with contextlib.suppress(Exception), _short_timeouts():
                _client(uri).set_terminated(state["run_id"], "FAILED")
        why = str(exc) if isinstance(exc, _Expired) else _reason(exc)
        marker = _write_pending(base, {
            "report_id": rep.report_id, "tracking_uri": _stored_uri(uri), "experiment": exp_name,
            "parent_run_id": parent_run_id, "reason": why,
            "failed_at": datetime.now(UTC).isoformat(timespec="seconds")})
        msg = (f"MLflow at {_safe_uri(uri)} could not be reached ({why}); the report "
               f"is kept in {base} — upload it later with `lea-audit sync {base}`")
        return TrackingResult(False, str(base), uri, message=msg, pending=str(marker))
    return TrackingResult(True, str(base), uri, run_id=run_id, experiment_id=exp_id,
                          message=f"MLflow run {run_id} (experiment {exp_id}) at "
                                  f"{_safe_uri(uri)}")


def _log_tables(client: Any, run_id: str, rep: Any, tmp: Path) -> None:
    """Every table of the report under ``tables/`` in one upload, each registered as a table
    (the ``mlflow.loggedArtifacts`` tag that ``MlflowClient.log_table`` sets, set once)."""
    tables = report_tables(rep)
    if not tables:
        return
    for rel, table in tables.items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, ensure_ascii=False, allow_nan=True), encoding="utf-8")
    client.log_artifacts(run_id, str(tmp / "tables"), "tables")
    listed, entries = 2, []
    for rel in tables:
        entry = {"path": rel, "type": "table"}
        listed += len(json.dumps(entry)) + 2
        if listed > MAX_TAG_VALUE:
            break
        entries.append(entry)
    client.set_tag(run_id, "mlflow.loggedArtifacts", json.dumps(entries))


def _log_datasets(client: Any, run_id: str, rep: Any) -> None:
    """The audited data (context ``evaluation``) and the reference (``training``) as MLflow
    dataset inputs: name, digest (the report's SHA-256) and source; the data itself stays
    where it is (an audit's cases are not copied into the tracking store)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    source = rep.data.get("source") if isinstance(rep.data.get("source"), Mapping) else {}
    inputs = []
    for ctx, info, name in (("evaluation", rep.data, source.get("file") or "audited data"),
                            ("training", rep.data.get("reference"), "reference data")):
        if not isinstance(info, Mapping) or not info.get("sha256"):
            continue
        src = CodeDatasetSource({"lea.source": _stored_uri(str(source.get("file") or
                                                              source.get("model_uri") or
                                                              "lea-ai-audit"))[:500]})
        ds = MetaDataset(src, name=Path(str(name)).name[:200] or ctx,
                         digest=str(info["sha256"])[:32])
        inputs.append(DatasetInput(ds._to_mlflow_entity(),
                                   tags=[InputTag("mlflow.data.context", ctx)]))
    if inputs:
        client.log_inputs(run_id, datasets=inputs)


def _upload_run(client: Any, base: Path, rep: Any, exp_id: str, *, step: Any,
                state: dict[str, Any], run_name: str | None, parent_run_id: str | None
                ) -> str:
    """The run of ``rep`` in ``exp_id``: found by its report id, or created and filled.
    ``step()`` raises once the deadline has passed; a run left unfinished is marked FAILED."""
    import tempfile

    found = _find_logged(client, [exp_id], rep.report_id)
    if found is not None:  # already logged (e.g. a sync after a lost sidecar)
        _log_signoff_files(client, found.info.run_id, base)
        return str(found.info.run_id)
    tags = report_tags(rep)
    if run_name:
        tags["mlflow.runName"] = run_name
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(exp_id, tags={"lea.report_id": rep.report_id})
    run_id = state["run_id"] = run.info.run_id
    try:
        step()
        _log_values(client, run_id, params=report_params(rep), metrics=report_metrics(rep),
                    tags=tags)
        step()
        _log_datasets(client, run_id, rep)
        with tempfile.TemporaryDirectory(prefix="lea-card-") as tmp:
            files = _artifact_files(base, rep) + _write_cards_if_missing(base, rep, Path(tmp))
            for path, folder in files:
                step()
                client.log_artifact(run_id, str(path), folder or None)
            step()
            _log_tables(client, run_id, rep, Path(tmp) / "t")
        step()
        _log_signoff_tags(client, run_id, base)
        head = _attested_ledger_head(base)
        if head:
            client.set_tag(run_id, "lea.ledger.head", head)
        step()
        client.set_terminated(run_id, "FINISHED")
    except _Expired:
        with contextlib.suppress(Exception):
            client.set_terminated(run_id, "FAILED")
        raise
    _close_half_logged(client, exp_id, rep.report_id, run_id)
    return str(run_id)


def _safe_uri(uri: str) -> str:
    """``uri`` without a password (``https://user:secret@host`` -> ``https://user:***@host``)."""
    return re.sub(r"(//[^/:@]+):[^/@]+@", r"\1:***@", uri)


_SECRET_QUERY = re.compile(r"([?&](?:token|password|passwd|secret|key|access_token|api_key)=)"
                           r"[^&#]*", re.IGNORECASE)


def _stored_uri(uri: str) -> str:
    """``uri`` as it may be written to disk (markers, sidecars, caches): no user information
    and no secret query values (``https://u:pw@host/?token=x`` -> ``https://host/?token=``).
    :func:`_usable_uri` finds the credentials again in the environment."""
    uri = re.sub(r"^([a-zA-Z][\w+.-]*://)[^/@?#]*@", r"\1", str(uri))
    return _SECRET_QUERY.sub(r"\1", uri)


def _usable_uri(stored: str | None) -> str | None:
    """A URI read from disk made usable: the same store's URI as this process was given it
    (``--tracking-uri``) or as ``MLFLOW_TRACKING_URI`` holds it (with credentials), else the
    stored one (MLflow then reads ``MLFLOW_TRACKING_USERNAME``,
    ``MLFLOW_TRACKING_PASSWORD`` or ``MLFLOW_TRACKING_TOKEN``). Old sidecars hold
    ``user:***@``: the same rule applies."""
    if not stored:
        return None
    env = os.environ.get("MLFLOW_TRACKING_URI")
    plain = _stored_uri(stored.replace(":***@", "@"))
    if env and _stored_uri(env) == plain:
        return env
    return _KNOWN_URIS.get(plain, plain)


# -- sign-offs ---------------------------------------------------------------------------------
def _signoff_name(record: Mapping[str, Any]) -> str:
    canon = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:12]


def _log_signoff_record(client: Any, run_id: str, record: Mapping[str, Any]) -> None:
    key = _signoff_name(record)
    client.log_text(run_id, json.dumps(record, indent=2, ensure_ascii=False, default=str),
                    f"signoffs/{key}.json")
    text = (f"{record.get('decision', '?')} by {record.get('reviewer', '?')} "
            f"({record.get('role', '?')}) at {record.get('signed_at', '?')}")
    from mlflow.entities import RunTag

    client.log_batch(run_id, tags=[RunTag(f"lea.signoff.{key}", text[:MAX_TAG_VALUE]),
                                   RunTag("lea.signoff.latest", text[:MAX_TAG_VALUE])])


def _signoff_records(base: Path) -> list[dict[str, Any]]:
    sign = base / "signoffs"
    if not sign.is_dir():
        return []
    return [r for p in sorted(sign.glob("*.json")) if (r := _read_json(p))]


def _log_signoff_tags(client: Any, run_id: str, base: Path) -> None:
    from mlflow.entities import RunTag

    tags = []
    for r in _signoff_records(base):
        text = (f"{r.get('decision', '?')} by {r.get('reviewer', '?')} ({r.get('role', '?')}) "
                f"at {r.get('signed_at', '?')}")
        tags.append(RunTag(f"lea.signoff.{_signoff_name(r)}", text[:MAX_TAG_VALUE]))
    for chunk in _chunks(tags, _BATCH_TAGS):
        client.log_batch(run_id, tags=chunk)


def _log_signoff_files(client: Any, run_id: str, base: Path) -> None:
    for r in _signoff_records(base):
        _log_signoff_record(client, run_id, r)


def _attested_ledger_head(base: Path) -> str | None:
    """``seq:hash`` of the ledger entry the author's attestation names, if any."""
    import base64

    env = _read_json(base / "attestation.json")
    try:
        led = strict_json(base64.b64decode(env["payload"]))["predicate"]["ledger"]
        return f"{int(led['seq'])}:{led['hash']}" if led else None
    except (KeyError, ValueError, TypeError):
        return None


def log_signoff(report_dir: str | os.PathLike[str], record: Mapping[str, Any], *,
                ledger_head: str | None = None) -> bool:
    """Log a sign-off ``record`` to the report's MLflow run (artifact ``signoffs/<digest>.json``
    and tags ``lea.signoff.<digest>``, ``lea.signoff.latest``, and ``lea.ledger.head``: the
    ``seq:hash`` of the ledger after the sign-off was appended, an anchor kept outside the
    ledger's folder).

    The run is the one in ``<report_dir>/mlflow.json``. Returns False (never raises) when the
    report was not logged or MLflow cannot be reached; then a ``mlflow.pending.json`` marker is
    left (unless tracking is off and the report was never logged) and ``lea-audit sync`` logs
    every record in ``<report_dir>/signoffs/`` later.

    Examples
    --------
    >>> log_signoff("audit", {"reviewer": "A. Officer", "role": "dpo",
    ...                       "decision": "approve", "signed_at": "2026-01-01T10:00:00+00:00"})
    True                                                                # doctest: +SKIP
    """
    base = Path(report_dir)
    side = _read_json(base / SIDECAR_FILE)
    if not side.get("run_id") or not side.get("tracking_uri"):
        if (base / PENDING_FILE).exists():
            _write_pending(base, {"signoffs_pending": True})
        return False
    uri = _usable_uri(str(side["tracking_uri"])) or ""
    try:
        with _short_timeouts():
            client = _client(uri)
            _log_signoff_record(client, str(side["run_id"]), dict(record))
            if ledger_head:
                client.set_tag(str(side["run_id"]), "lea.ledger.head", ledger_head)
    except Exception as exc:
        _write_pending(base, {"signoffs_pending": True, "reason": _reason(exc),
                              "report_id": side.get("report_id"),
                              "tracking_uri": _stored_uri(uri),
                              "failed_at": datetime.now(UTC).isoformat(timespec="seconds")})
        return False
    return True


# -- sync --------------------------------------------------------------------------------------
def _report_dirs(directory: Path) -> list[Path]:
    found = set()
    if (directory / "report.json").is_file():
        found.add(directory)
    for p in directory.rglob("report.json"):
        # not the artifacts of runs already logged (a file store or artifact root below DIR)
        if not {"mlruns", "mlartifacts", "artifacts"} & set(p.relative_to(directory).parts):
            found.add(p.parent)
    return sorted(found)


def sync(directory: str | os.PathLike[str] | None = None, *, tracking_uri: str | None = None,
         experiment: str | None = None, timeout: float | None = None) -> list[TrackingResult]:
    """Upload every report under ``directory`` that is not in MLflow yet.

    A report directory is uploaded when it has a ``mlflow.pending.json`` marker (logging
    failed, or sign-offs wait) or no ``mlflow.json`` sidecar (never logged, e.g. ``--no-track``).
    Default ``directory``: the spool of :func:`lea_ai_audit.audit` calls without ``out=``.
    The URI is ``tracking_uri``, else the one in the marker (written without credentials:
    ``MLFLOW_TRACKING_URI`` with the same host supplies them, or MLflow's
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/``TOKEN``), else the default. Two syncs at once
    upload each report once (see :func:`log_report`); ``timeout`` bounds each upload.

    Examples
    --------
    >>> [r.logged for r in sync("audits/", tracking_uri=uri)]          # doctest: +SKIP
    [True, True]
    """
    root = Path(directory) if directory is not None else spool_dir()
    if not root.is_dir():
        raise InputError(f"{str(root)!r} is not a directory",
                         "pass the folder holding report directories (e.g. the --out of run)")
    results = []
    for base in _report_dirs(root):
        marker = _read_json(base / PENDING_FILE)
        if not marker and (base / SIDECAR_FILE).is_file():
            continue
        uri = tracking_uri or _usable_uri(marker.get("tracking_uri"))
        side = _read_json(base / SIDECAR_FILE)
        if marker.get("signoffs_pending") and side.get("run_id") and not tracking_uri:
            uri = uri or _usable_uri(side.get("tracking_uri"))
        try:
            results.append(log_report(base, tracking_uri=uri,
                                      experiment=experiment or marker.get("experiment"),
                                      parent_run_id=marker.get("parent_run_id"),
                                      nested=False, timeout=timeout))
        except LeaAuditError as exc:  # one broken report does not stop the others
            results.append(TrackingResult(False, str(base), str(uri or ""),
                                          message=f"not uploaded: {exc}"))
    return results


# -- audit() integration -----------------------------------------------------------------------
def track_report(report: Any, *, out: str | os.PathLike[str] | None,
                 track: bool | str = True) -> TrackingResult | None:
    """Used by :func:`lea_ai_audit.audit`: log ``report`` (saved in ``out``) if tracking is on.

    Without ``out`` the report is written to a temporary directory for the upload; if that
    fails it is moved to :func:`spool_dir` (``lea-audit sync`` uploads it later). A failure is
    a :class:`TrackingWarning`, never an exception.
    """
    if track is False or (track is True and tracking_disabled()):
        return None
    uri = track if isinstance(track, str) else None
    if out is not None:
        res = log_report(out, tracking_uri=uri)
    else:
        import shutil
        import tempfile

        from .cards import write_cards

        with tempfile.TemporaryDirectory(prefix="lea-audit-") as tmp:
            report.save(tmp)
            write_cards(report, tmp, report_dir=tmp)
            res = log_report(tmp, tracking_uri=uri)
            if not res.logged:
                dest = spool_dir() / report.report_id
                shutil.copytree(tmp, dest, dirs_exist_ok=True)
                msg = res.message.replace(str(tmp), str(dest))
                res = TrackingResult(False, str(dest), res.tracking_uri, message=msg,
                                     pending=str(dest / PENDING_FILE))
    if not res.logged:
        warnings.warn(res.message, TrackingWarning, stacklevel=3)
    return res


# -- model registry ----------------------------------------------------------------------------
_MODEL_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


def parse_model_uri(uri: str) -> tuple[str, str]:
    """``models:/NAME/VERSION`` -> (name, version); :class:`InputError` for anything else."""
    m = _MODEL_URI.match(str(uri).strip())
    if not m:
        raise InputError(f"model URI {uri!r} is not of the form models:/NAME/VERSION",
                         "name the registered model and its version number, e.g. "
                         "models:/triage/3")
    return m.group("name"), m.group("version")


def record_gate(model_uri: str, report: Any, *, opened: bool, reasons: list[str] | None = None,
                tracking_uri: str | None = None, alias: str = "audited",
                run_id: str | None = None) -> str:
    """Record the gate's verdict on a registered model version; set ``alias`` only if open.

    Tags on the version: ``lea.audit.gate`` (open/closed), ``lea.audit.status``,
    ``lea.audit.report_id``, ``lea.audit.report_sha256``, ``lea.audit.policy``,
    ``lea.audit.reasons``, ``lea.audit.at`` and ``lea.audit.run_id`` when known. When the gate
    is closed and ``alias`` points at this version, the alias is removed.

    Raises
    ------
    lea_ai_audit.errors.InputError
        A malformed URI, a version the registry does not have, or a registry that cannot be
        reached (the verdict could not be recorded).

    Examples
    --------
    >>> record_gate("models:/triage/3", report, opened=True)           # doctest: +SKIP
    "models:/triage/3: verdict recorded, alias 'audited' set"
    """
    name, version = parse_model_uri(model_uri)
    rep = _report_of(report)
    uri = resolve_tracking_uri(tracking_uri)
    tags = {"lea.audit.gate": "open" if opened else "closed",
            "lea.audit.status": rep.status.value,
            "lea.audit.report_id": rep.report_id,
            "lea.audit.report_sha256": rep.digest(),
            "lea.audit.policy": f"{rep.policy.get('id')} {rep.policy.get('version')}",
            "lea.audit.reasons": "; ".join(reasons or [])[:5000] or "none",
            "lea.audit.at": datetime.now(UTC).isoformat(timespec="seconds")}
    if run_id:
        tags["lea.audit.run_id"] = run_id
    try:
        with _short_timeouts():
            client = _client(uri)
            client.get_model_version(name, version)
            for k, v in tags.items():
                client.set_model_version_tag(name, version, k, v)
            if opened:
                client.set_registered_model_alias(name, alias, version)
                return f"{model_uri}: verdict recorded, alias {alias!r} set"
            try:
                current = client.get_model_version_by_alias(name, alias)
            except Exception:
                current = None
            if current is not None and str(current.version) == version:
                client.delete_registered_model_alias(name, alias)
                return f"{model_uri}: verdict recorded, alias {alias!r} removed"
            return f"{model_uri}: verdict recorded, alias {alias!r} not set"
    except Exception as exc:
        raise InputError(f"the verdict could not be recorded on {model_uri} at "
                         f"{_safe_uri(uri)} ({_reason(exc)})",
                         "check the model name and version and that the registry is "
                         "reachable (--tracking-uri), then run the gate again") from exc


def __getattr__(name: str) -> Any:
    if name == "LeaAuditEvaluator":  # the plugin's old home (entry points of earlier installs)
        from .evaluator import LeaAuditEvaluator

        return LeaAuditEvaluator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
