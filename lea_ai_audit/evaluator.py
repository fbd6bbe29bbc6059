"""The ``mlflow.models.evaluate`` plugin: ``evaluators=["lea_ai_audit"]`` runs the audit.

Registered through the ``mlflow.model_evaluator`` entry point (pyproject.toml). The class is
built on first use, so importing lea_ai_audit does not import mlflow.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

from .errors import InputError
from .tracking import (
    _artifact_files,
    _client,
    _log_values,
    metric_name,
    report_metrics,
    report_params,
    report_tags,
)

__all__ = ["LeaAuditEvaluator"]  # noqa: F822 - built on first use by __getattr__


def _make_evaluator() -> type:
    from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

    class LeaAuditEvaluator(ModelEvaluator):
        """``mlflow.models.evaluate(..., evaluators=["lea_ai_audit"])``: the whole audit.

        ``evaluator_config``: ``sensitive`` (required: columns among the features),
        and optionally ``policy``, ``checks``, ``reference_groups``, ``score`` (a feature
        column with risk scores; else the model's ``predict_proba`` when it has one),
        ``threshold``, ``author``, ``seed``, ``metadata``. The report, the cards and every
        evidence file are logged to the evaluation run; its metrics are returned.
        """

        name = "lea_ai_audit"

        @classmethod
        def can_evaluate(cls, *, model_type: Any, evaluator_config: Any, **kwargs: Any) -> bool:
            return model_type in ("classifier", None)

        def evaluate(self, *, model_type: Any, dataset: Any, run_id: str,
                     evaluator_config: Any, model: Any = None, extra_metrics: Any = None,
                     custom_artifacts: Any = None, predictions: Any = None,
                     **kwargs: Any) -> Any:
            return _evaluate(EvaluationResult, dataset=dataset, run_id=run_id,
                             config=dict(evaluator_config or {}), model=model)

    return LeaAuditEvaluator


def _evaluate(result_cls: Any, *, dataset: Any, run_id: str, config: dict[str, Any],
              model: Any) -> Any:
    import mlflow
    import numpy as np

    from .runner import audit

    sensitive = config.get("sensitive")
    if not sensitive:
        raise InputError("the lea_ai_audit evaluator needs evaluator_config={'sensitive': "
                         "[...]}", "name the sensitive attribute columns of the data")
    X = dataset.features_data
    frame = X.copy()
    frame["__target__"] = np.asarray(dataset.labels_data)
    if model is not None:
        preds = model.predict(X)
        frame["__prediction__"] = np.asarray(getattr(preds, "values", preds)).reshape(len(X), -1
                                                                                       )[:, 0]
    else:
        frame["__prediction__"] = np.asarray(dataset.predictions_data)
    score = config.get("score")
    if score is None and model is not None:
        raw = None
        with contextlib.suppress(Exception):
            raw = model.get_raw_model()
        if raw is not None and hasattr(raw, "predict_proba"):
            with contextlib.suppress(Exception):
                frame["__score__"] = np.asarray(raw.predict_proba(X))[:, 1]
                score = "__score__"
    rep = audit(frame, target="__target__", sensitive=sensitive, prediction="__prediction__",
                score=score, policy=config.get("policy"), checks=config.get("checks"),
                reference_groups=config.get("reference_groups"),
                threshold=float(config.get("threshold", 0.5)), author=config.get("author"),
                seed=int(config.get("seed", 0)), metadata=config.get("metadata"), track=False)
    metrics = report_metrics(rep)
    client = _client(str(mlflow.get_tracking_uri()))
    params = {f"lea.{k}": v for k, v in report_params(rep).items()}
    params = {metric_name(k): v for k, v in params.items()}
    _log_values(client, run_id, params=params, metrics=metrics, tags=report_tags(rep)
                | {"mlflow.runName": client.get_run(run_id).data.tags.get(
                    "mlflow.runName", "lea-ai-audit")})
    from .cards import write_cards

    with tempfile.TemporaryDirectory(prefix="lea-eval-") as tmp:
        rep.save(tmp)
        write_cards(rep, tmp, report_dir=tmp)
        base = Path(tmp)
        for path, folder in _artifact_files(base, rep):
            client.log_artifact(run_id, str(path),
                                "lea_ai_audit" + (f"/{folder}" if folder else ""))
    return result_cls(metrics=metrics, artifacts={}, run_id=run_id)


def __getattr__(name: str) -> Any:
    if name == "LeaAuditEvaluator":  # built on first use: mlflow is imported only then
        cls = _make_evaluator()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
