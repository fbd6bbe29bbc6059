"""Run a policy's checks over a context; one failing check never stops the others.

Examples
--------
>>> from lea_ai_audit import audit
>>> from lea_ai_audit.datasets import make_police_triage
>>> df = make_police_triage(n_rows=4000, seed=1)
>>> df["risk"] = df["prior_contacts"].rank(pct=True)  # a vendor's score, for the example
>>> rep = audit(df, target="reoffended", sensitive=["ethnicity", "sex"],
...             score="risk", checks=["fairness.disparity"], track=False)
>>> rep.status.value in {"pass", "warn", "fail"}
True
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import PurePosixPath
from typing import Any

from ._budget import ModelBudgetError
from ._budget import current as current_meter
from .context import AuditContext
from .errors import InputError, LimitError
from .policy import Policy, load_policy
from .results import (
    SCHEMA_VERSION,
    AuditReport,
    CheckResult,
    Evidence,
    Status,
    overall_status,
    safe_filename,
)

__all__ = ["Audit", "LedgerWarning", "audit"]

log = logging.getLogger("lea_ai_audit")

#: progress(index, total, requirement_id, result_or_None): called before and after each check
ProgressFn = Callable[[int, int, str, CheckResult | None], None]

_LIBRARIES = ("lea-ai-audit", "numpy", "pandas", "scipy", "scikit-learn", "pyyaml", "fairlearn",
              "shap", "evidently", "pandera", "mlflow", "lightgbm")


def _versions() -> dict[str, Any]:
    libs = {}
    for name in _LIBRARIES:
        try:
            libs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "libraries": libs}


def _place_files(evidence: Sequence[Evidence], req_id: str, report_id: str = ""
                 ) -> tuple[Evidence, ...]:
    """File evidence goes to ``evidence/<report>/<requirement>/<file>`` beside report.json.

    The report's own folder means saving a new report never overwrites the files of the one
    already there: if the save fails half-way, the previous report and its evidence stay intact.
    """
    base = f"evidence/{safe_filename(report_id[:12])}" if report_id else "evidence"
    out, seen = [], set()
    for e in evidence:
        if e.kind == "file":
            name = safe_filename(PurePosixPath(str(e.data["path"])).name)
            path, k = f"{base}/{safe_filename(req_id)}/{name}", 1
            while path in seen:  # two files of one check with the same name: keep both
                k += 1
                path = f"{base}/{safe_filename(req_id)}/{k}-{name}"
            seen.add(path)
            e = replace(e, data={**e.data, "path": path})
        out.append(e)
    return tuple(out)


#: the prefix of the message of a blocking requirement whose check could not decide it
UNDECIDED_BLOCKING = ("blocking requirement not decided, so the gate stays closed (it opens only "
                      "by signed waivers of this requirement: gate --accept-waivers)")


def _apply_requirement(res: CheckResult, req: Any, duration: float, report_id: str = ""
                       ) -> CheckResult:
    status = res.status
    if not req.blocking and status is Status.FAIL:
        status = Status.WARN  # a non-blocking requirement's failure is a warning
    if req.blocking and status is Status.SKIPPED:
        # a blocking requirement the data cannot decide must not let the model through: the
        # burden is to demonstrate that it holds, not to fail to show that it does not
        status = Status.ERROR
        res = replace(res, message=f"{UNDECIDED_BLOCKING}: {res.message}")
    return replace(res, requirement_id=req.id,
                   evidence=_place_files(res.evidence, req.id, report_id),
                   title=req.title, clauses=tuple(req.clauses),
                   blocking=req.blocking, raw_status=res.status, status=status,
                   duration_s=duration)


def _log_note(text: str) -> None:
    """Progress of a long audit, for a caller without a progress display (logging, INFO)."""
    log.info(text)


def run_policy(ctx: AuditContext, policy: Policy, *, progress: ProgressFn | None = None,
               report_id: str = "") -> list[CheckResult]:
    """Run every requirement of ``policy`` over ``ctx``. Exceptions become ERROR results.

    ``report_id`` names the folder of the report's evidence files (``evidence/<id>/...``).
    """
    results = []
    total = len(policy.requirements)
    checks = [req.make_check() for req in policy.requirements]
    started: list[float] = []
    last_group_metrics = max((i for i, req in enumerate(policy.requirements)
                              if req.check == "fairness.group_metrics"), default=-1)
    try:
        for check in checks:  # slow independent work begins now (evidently's drift report)
            t0 = time.perf_counter()
            try:
                check.start(ctx)
            except Exception:
                check.cancel()
            started.append(time.perf_counter() - t0)
        for i, (req, check) in enumerate(zip(policy.requirements, checks, strict=True)):
            if progress:
                progress(i, total, req.id, None)
            t0 = time.perf_counter()
            try:
                res = check.run(ctx)
            except (ModelBudgetError, LimitError):
                raise  # a limit was hit: the audit ends (exit 2), nothing written
            except Exception as exc:  # a check's own failure: reported, never fatal
                tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
                res = CheckResult(
                    check_id=req.check, requirement_id=req.id, status=Status.ERROR,
                    message=f"the check could not run: {type(exc).__name__}: {exc}",
                    evidence=(Evidence("traceback", "text", "".join(tb[-6:])),),
                    params=check.params())
            res = _apply_requirement(res, req, time.perf_counter() - t0 + started[i],
                                     report_id)
            results.append(res)
            meter = current_meter()
            if meter is not None and meter.error is not None:
                raise meter.error  # caught by the check's own code: the audit still ends
            if i == last_group_metrics:  # the model card's figures, drawn by the worker now
                from .cards.figures import prefetch

                prefetch(report_id, results, ctx.reference_groups)
            if progress:
                progress(i + 1, total, req.id, res)
    finally:
        for check in checks:
            check.cancel()
    return results


@dataclass
class Audit:
    """An audit configuration that can be run on several data sets.

    Holds everything :func:`audit` takes except the data; ``Audit(...).run(df)`` equals
    ``audit(df, ...)``. The policy is loaded and validated when the ``Audit`` is made.

    Examples
    --------
    >>> from lea_ai_audit import Audit
    >>> a = Audit(target="reoffended", sensitive=["ethnicity"], prediction="flagged")
    >>> a.policy.id
    'eu-council-2020-internal-security'
    """

    target: str
    sensitive: Sequence[str] | str
    model: Any = None
    prediction: str | None = None
    score: str | None = None
    reference_groups: Mapping[str, Any] | None = None
    policy: Policy | str | None = None
    checks: Sequence[str] | None = None
    author: str | None = None
    seed: int = 0
    features: Sequence[str] | None = None
    threshold: float = 0.5
    positive_label: Any = None
    attestations: Mapping[str, str] | None = None
    model_file: str | None = None
    data_source: Mapping[str, Any] | None = field(default=None)
    decisions: Any = None
    schema: Any = None
    metadata: Mapping[str, Any] | None = None
    declared_population: Mapping[str, Mapping[str, float]] | None = None
    track: bool | str = True

    def __post_init__(self) -> None:
        self.policy = load_policy(self.policy).select(
            [self.checks] if isinstance(self.checks, str) else self.checks)

    def context(self, data: Any, *, reference: Any = None) -> AuditContext:
        """Validate ``data`` and compute predictions and groups (what :meth:`run` audits)."""
        return AuditContext.build(
            data, target=self.target, sensitive=self.sensitive, model=self.model,
            prediction=self.prediction, score=self.score, reference=reference,
            reference_groups=self.reference_groups, features=self.features,
            threshold=self.threshold, positive_label=self.positive_label, seed=self.seed,
            attestations=self.attestations, model_file=self.model_file,
            decisions=self.decisions, schema=self.schema, metadata=self.metadata,
            declared_population=self.declared_population)

    def run(self, data: Any, *, reference: Any = None, progress: ProgressFn | None = None,
            out: str | os.PathLike[str] | None = None,
            card_formats: Sequence[str] = ("html", "md", "json"),
            ledger: str | os.PathLike[str] | bool | None = None) -> AuditReport:
        """Audit ``data`` and return the report.

        With ``out`` the report, its evidence and the model cards (``card_formats``; add
        ``"pdf"`` for card.pdf) are saved there, and the assessment is appended to the ledger
        (``ledger``: a path, ``False``/``"off"`` for none; default ``$LEA_AUDIT_LEDGER``, else
        ``ledger.jsonl`` beside ``out``, as ``lea-audit run`` does). The audit is logged to
        MLflow unless ``track`` is False (see :mod:`lea_ai_audit.tracking`).
        """
        from .tracking import tracking_disabled, tracking_timeout

        if self.track is not False and not (self.track is True and tracking_disabled()):
            tracking_timeout()  # a bad LEA_AUDIT_TRACKING_TIMEOUT is refused before the audit
        report = self._run(data, reference=reference, progress=progress)
        if out is not None:
            from ._io import staged_folder
            from .cards import write_cards

            with staged_folder(out) as folder:  # switched whole: the old audit or the new one
                report.save(folder)
                write_cards(report, folder, report_dir=folder, formats=tuple(card_formats))
            _record(report, out, ledger)
        from .tracking import track_report

        track_report(report, out=out, track=self.track)
        return report

    def _run(self, data: Any, *, reference: Any = None,
             progress: ProgressFn | None = None) -> AuditReport:
        from ._budget import metered

        t0 = time.perf_counter()
        note = getattr(progress, "note", None)
        with metered(self.model, progress=note if callable(note) else _log_note) as meter:
            ctx = self.context(data, reference=reference)
            assert isinstance(self.policy, Policy)
            report_id = uuid.uuid4().hex
            results = run_policy(ctx, self.policy, progress=progress, report_id=report_id)
            if meter.error is not None:  # a check caught it: the audit still ends here
                raise meter.error
        data_info: dict[str, Any] = {
            "n_rows": ctx.n, "n_columns": int(ctx.data.shape[1]),
            "columns": [str(c) for c in ctx.data.columns], "sha256": ctx.data_digest,
            "positives": int(ctx.y_true.sum()), "predicted_positive": int(ctx.y_pred.sum()),
        }
        if reference is not None:
            from .context import _dataframe_digest
            data_info["reference"] = {"n_rows": int(reference.shape[0]),
                                      "sha256": _dataframe_digest(reference)}
        if self.data_source:
            data_info["source"] = dict(self.data_source)
        subject = ctx.describe()
        if self.metadata:
            subject["metadata"] = dict(self.metadata)
        return AuditReport(
            checks=tuple(results), status=overall_status(results), schema_version=SCHEMA_VERSION,
            report_id=report_id, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            author=self.author, seed=self.seed, policy=self.policy.describe(),
            subject=subject, data=data_info, environment=_versions(),
            duration_s=time.perf_counter() - t0)


def _record(report: AuditReport, out: str | os.PathLike[str],
            ledger: str | os.PathLike[str] | bool | None) -> None:
    """Append the saved audit to its ledger; a ledger that cannot be written is a
    :class:`LedgerWarning` (the report is saved; ``lea-audit gate`` will say it is missing)."""
    import warnings

    from .errors import LeaAuditError
    from .ledger import default_ledger_path, record_assessment

    if ledger is False:
        return
    path = default_ledger_path(out, ledger=None if ledger is True else ledger)
    if path is None:
        return
    try:
        entry = record_assessment(path, report, report_dir=out)
    except (LeaAuditError, OSError) as exc:
        warnings.warn(f"ledger {path} not written: {exc}", LedgerWarning, stacklevel=3)
        return
    log.info("ledger: %s (entry %s, head %s)", path, entry["seq"], entry["hash"])


class LedgerWarning(UserWarning):
    """The audit was saved but could not be appended to its ledger."""


def audit(data: Any, *, target: str, sensitive: Sequence[str] | str, model: Any = None,
          prediction: str | None = None, score: str | None = None, reference: Any = None,
          reference_groups: Mapping[str, Any] | None = None, policy: Policy | str | None = None,
          checks: Sequence[str] | str | None = None, author: str | None = None, seed: int = 0,
          features: Sequence[str] | None = None, threshold: float = 0.5,
          positive_label: Any = None, attestations: Mapping[str, str] | None = None,
          model_file: str | None = None, data_source: Mapping[str, Any] | None = None,
          decisions: Any = None, schema: Any = None, metadata: Mapping[str, Any] | None = None,
          declared_population: Mapping[str, Mapping[str, float]] | None = None,
          progress: ProgressFn | None = None, out: str | os.PathLike[str] | None = None,
          track: bool | str = True,
          card_formats: Sequence[str] = ("html", "md", "json"),
          ledger: str | os.PathLike[str] | bool | None = None) -> AuditReport:
    """Audit a model, or a vendor's predictions and scores, against a policy pack.

    Parameters
    ----------
    data : pandas.DataFrame
        The cases to audit: features, the outcome and the sensitive attributes.
    target : str
        Column with the observed outcome (0/1 or bool; else pass ``positive_label``).
    sensitive : str or list of str
        Columns with the sensitive attributes (ethnicity, sex, ...). Each attribute and their
        intersection are audited.
    model : estimator, optional
        A fitted scikit-learn-compatible classifier (Pipelines included). Its predictions and
        ``predict_proba`` scores are computed once.
    prediction, score : str, optional
        Without a model: the columns with the tool's decisions (0/1) and risk scores. With
        ``score`` alone, a decision is ``score >= threshold``.
    reference : DataFrame, optional
        Training or reference data (for the data-quality and drift checks).
    reference_groups : dict, optional
        ``{attribute: group}`` to compare against; default each attribute's largest group.
    policy : str, path or Policy, optional
        The policy pack; default ``eu-council-2020-internal-security``.
    checks : list of str, optional
        Run only requirements whose check id (or requirement id) starts with one of these.
    author : str, optional
        Who ran the audit (a reviewer may not sign off their own audit).
    seed : int
        Seed of every random sample drawn by the checks.
    attestations : dict, optional
        Statements for the policy's manual attestation items, by item key.
    model_file : str, optional
        Path of the file the model was loaded from; its SHA-256 goes into the report.
    data_source : dict, optional
        Where the data came from (e.g. ``{"file": ..., "file_sha256": ...}``), for the report.
    decisions : lea_ai_audit.decisions.DecisionLog, optional
        The officers' decisions on the tool's recommendations (the oversight check reads it).
    schema : pandera schema or path to its YAML, optional
        Overrides the schema inferred from ``reference`` in the data-quality checks.
    metadata : dict, optional
        Model-card metadata (owner, intended use, out-of-scope uses, ...), kept in the report.
    declared_population : dict, optional
        ``{attribute: {group: share}}``, the population the data should represent (e.g. a
        census): each group's share of the data is compared with it (data-quality check).
    out : path, optional
        Save report.json, its evidence files and the model cards (card.html, card.md,
        card.json) in this directory, and append the assessment to the ledger.
    ledger : path or bool, optional
        With ``out``: the hash-chained ledger the assessment is appended to, as ``lea-audit
        run`` does (default ``$LEA_AUDIT_LEDGER``, else ``ledger.jsonl`` in the folder that
        holds ``out``; ``False`` or ``"off"``: none). Without ``out`` nothing is written.
    card_formats : list of str
        The cards written with ``out``: any of ``html``, ``md``, ``json`` and ``pdf`` (printed
        by headless Chromium; needs Playwright and a Chromium, see :mod:`lea_ai_audit.cards.pdf`).
    track : bool or str
        Log the audit to MLflow as a run (nested under the active run if one is open).
        ``True`` (default): to ``MLFLOW_TRACKING_URI``, else a local store in
        ``~/.lea-ai-audit`` — unless the environment sets ``LEA_AUDIT_TRACKING=off``; a
        string: that tracking URI; ``False``: not logged. An unreachable server never stops
        the audit: a ``TrackingWarning`` says where the report waits for ``lea-audit sync``.

    Returns
    -------
    AuditReport
        ``report.status``, ``report.checks``, ``report.to_json()``, ``report.save(dir)``.

    Raises
    ------
    lea_ai_audit.errors.LeaAuditError
        For bad input (a missing column, a non-binary target, an unfitted model, a bad policy).
        Problems found *in the model* are results, not exceptions.

    Examples
    --------
    >>> from lea_ai_audit import audit
    >>> from lea_ai_audit.datasets import make_police_triage
    >>> df = make_police_triage(n_rows=3000, seed=0)
    >>> df["risk"] = df["prior_contacts"].rank(pct=True)  # a vendor's score, for the example
    >>> df["flagged"] = (df["risk"] > 0.7).astype(int)
    >>> report = audit(df, target="reoffended", sensitive=["ethnicity", "sex"],
    ...                prediction="flagged", score="risk", track=False)
    >>> report.status.value in {"pass", "warn", "fail", "error"}
    True
    """
    if isinstance(data, (str, bytes)):
        raise InputError("data must be a DataFrame, not a path",
                         "read it first (pandas.read_csv) or use `lea-audit run --data FILE`")
    from .spark import is_spark_frame  # imports neither pyspark nor anything heavy

    if is_spark_frame(data):  # exact counts by Spark aggregations, rows from a sample
        from .spark import audit_spark

        return audit_spark(data, reference=reference, progress=progress, out=out,
                           model=model, target=target, sensitive=sensitive, prediction=prediction,
                           score=score, reference_groups=reference_groups, policy=policy,
                           checks=checks, author=author, seed=seed, features=features,
                           threshold=threshold, positive_label=positive_label,
                           attestations=attestations, model_file=model_file,
                           data_source=data_source, decisions=decisions, schema=schema,
                           metadata=metadata, declared_population=declared_population,
                           track=track, ledger=ledger)
    return Audit(target=target, sensitive=sensitive, model=model, prediction=prediction,
                 score=score, reference_groups=reference_groups, policy=policy, checks=checks,
                 author=author, seed=seed, features=features, threshold=threshold,
                 positive_label=positive_label, attestations=attestations,
                 model_file=model_file, data_source=data_source, decisions=decisions,
                 schema=schema, metadata=metadata, declared_population=declared_population,
                 track=track).run(
                     data, reference=reference, progress=progress, out=out,
                     card_formats=card_formats, ledger=ledger)
