"""The ``mlflow.models.evaluate`` plugin: ``evaluators=["lea_ai_audit"]`` runs the audit.

Registered through the ``mlflow.model_evaluator`` entry point (pyproject.toml). The class is
built on first use, so importing lea_ai_audit does not import mlflow.

Given a model whose flavour holds a scikit-learn-compatible estimator (``mlflow.sklearn``,
LightGBM's and XGBoost's scikit-learn classes), the evaluator audits that estimator exactly as
``audit(data, model=estimator, ...)`` does: the explanation, robustness and drift checks run.
Any other model is audited on its pyfunc predictions, and an :class:`EvaluatorWarning` says
which checks that leaves out. Without a model, the predictions (and scores) in the data are
audited, as for a vendor's tool.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import DataError, InputError, LeaAuditError, ModelError, close_matches
from .tracking import (
    _artifact_files,
    _client,
    _log_datasets,
    _log_tables,
    _log_values,
    metric_name,
    report_metrics,
    report_params,
    report_tags,
)

__all__ = ["CONFIG_KEYS", "EvaluatorWarning", "LeaAuditEvaluator"]  # noqa: F822 - see __getattr__

#: ``evaluator_config`` keys handed to :func:`lea_ai_audit.audit` as they are
PASSED_THROUGH = ("policy", "checks", "reference_groups", "score", "threshold", "positive_label",
                  "author", "seed", "metadata", "declared_population", "attestations", "schema",
                  "decisions", "data_source")
#: every key ``evaluator_config={"lea_ai_audit": {...}}`` may hold
CONFIG_KEYS = ("sensitive", "features", "reference", *PASSED_THROUGH)
#: the decisions column of a model audited on its pyfunc predictions (unless ``predictions=``
#: of ``mlflow.models.evaluate`` names the model's output column)
PREDICTION_COLUMN = "prediction"
#: the run's artifact folder of the report, its cards and evidence files
ARTIFACT_DIR = "lea_ai_audit"
#: EvaluationResult.artifacts: name -> (file in ARTIFACT_DIR, json or text)
ARTIFACTS = {"lea_ai_audit_report": ("report.json", "json"),
             "lea_ai_audit_card_json": ("card.json", "json"),
             "lea_ai_audit_card_md": ("card.md", "text"),
             "lea_ai_audit_card_html": ("card.html", "text")}


class EvaluatorWarning(UserWarning):
    """The evaluator did not audit, or audited less than ``audit(model=...)`` would."""


def _make_evaluator() -> type:
    from mlflow.models.evaluation.base import EvaluationResult, ModelEvaluator

    class LeaAuditEvaluator(ModelEvaluator):
        """``mlflow.models.evaluate(..., evaluators=["lea_ai_audit"])``: the whole audit.

        The audit of :func:`lea_ai_audit.audit`, on the evaluation data, logged to the
        evaluation run: params, tags, every number as a metric, and report.json, the cards
        (card.html, card.md, card.json) and the evidence files under ``lea_ai_audit/``.

        ``evaluator_config={"lea_ai_audit": {...}}`` keys
        --------------------------------------------------
        sensitive : str or list of str (required)
            The sensitive attribute columns of ``data`` (not given to the model unless
            ``features`` names them).
        features : list of str, optional
            The model's input columns. Default: the names in the model's signature, else the
            estimator's ``feature_names_in_``, else every column but the target and the
            sensitive attributes.
        reference : DataFrame, path or URI, optional
            The training data (data-quality and drift checks): a pandas DataFrame, an
            ``mlflow.data`` pandas dataset, a CSV/Parquet file, or an MLflow artifact URI of
            one (``runs:/<run_id>/train.parquet``), read with the limits of ``lea-audit run
            --reference``.
        policy, checks, reference_groups, threshold, positive_label, author, seed, ...
            As for :func:`lea_ai_audit.audit`; also ``metadata``, ``declared_population``,
            ``attestations``, ``schema``, ``decisions`` and ``data_source``.
        score : str, optional
            The column with the tool's risk scores; refused with a scikit-learn model (the
            audit scores the cases with its ``predict_proba``).

        Any other key is refused (:class:`~lea_ai_audit.errors.InputError`), so a typo is not
        ignored. A config that holds none of these keys (mlflow runs every registered evaluator
        when ``evaluators=`` is not given) leaves the audit out, with an
        :class:`EvaluatorWarning`.

        The target keeps its name (``targets=``), the decisions theirs (``predictions=``).
        ``model=``: a scikit-learn-compatible estimator inside the MLflow model is audited as
        ``audit(model=...)`` audits it; another model on its pyfunc predictions (with an
        :class:`EvaluatorWarning`: no explanations, no robustness).

        Returns an ``EvaluationResult``: ``metrics`` every number of the report as
        ``report_metrics(report, full=True)`` names them (``"fpr-parity/fpr/ethnicity/
        minority_a"``, ``"audit/passed"``, ...; the run itself holds the compact set and the
        tables under ``tables/``), and
        ``artifacts`` ``lea_ai_audit_report`` (``.content`` is the report dict),
        ``lea_ai_audit_card_json``, ``lea_ai_audit_card_md``, ``lea_ai_audit_card_html``,
        each with the ``uri`` of the file in the run.

        Examples
        --------
        >>> info = mlflow.sklearn.log_model(model, name="model")      # doctest: +SKIP
        >>> result = mlflow.models.evaluate(
        ...     info.model_uri, data=test, targets="reoffended", model_type="classifier",
        ...     evaluators=["lea_ai_audit"],
        ...     evaluator_config={"lea_ai_audit": {"sensitive": ["ethnicity", "sex"],
        ...                                        "reference": train}})  # doctest: +SKIP
        >>> result.artifacts["lea_ai_audit_report"].content["status"]  # doctest: +SKIP
        'fail'
        """

        name = "lea_ai_audit"

        @classmethod
        def can_evaluate(cls, *, model_type: Any, evaluator_config: Any, **kwargs: Any) -> bool:
            """Binary classifiers (``model_type="classifier"``, or none given)."""
            return model_type in ("classifier", None)

        def evaluate(self, *, model_type: Any, dataset: Any, run_id: str,
                     evaluator_config: Any, model: Any = None, extra_metrics: Any = None,
                     custom_artifacts: Any = None, predictions: Any = None,
                     **kwargs: Any) -> Any:
            """Audit ``model`` (or the predictions of ``dataset``); log it to ``run_id``."""
            config = _config(evaluator_config)
            if config is None:
                return None
            return _evaluate(EvaluationResult, dataset=dataset, run_id=run_id, config=config,
                             model=model, predictions=predictions)

    return LeaAuditEvaluator


# -- the config --------------------------------------------------------------------------------
def _config(evaluator_config: Any) -> dict[str, Any] | None:
    """The checked config, or None when it is not meant for this evaluator.

    mlflow gives every registered evaluator the user's flat config when ``evaluators=`` is not
    given, and ``{}`` when the config names other evaluators: such a config holds no key of
    ours (nor one close to ``sensitive``), and the audit is left out with a warning, so that
    ``mlflow.models.evaluate(model_type="classifier")`` keeps working where lea-ai-audit is
    installed. A config with a key of ours is checked in full.
    """
    if evaluator_config is None:
        evaluator_config = {}
    if not isinstance(evaluator_config, Mapping):
        raise InputError(f"evaluator_config for lea_ai_audit must be a dict, got "
                         f"{type(evaluator_config).__name__}",
                         "pass evaluator_config={'lea_ai_audit': {'sensitive': [...]}}")
    config = dict(evaluator_config)
    unknown = [k for k in config if k not in CONFIG_KEYS]
    ours = [k for k in config if k in CONFIG_KEYS]
    if not ours and not any(close_matches(str(k), ["sensitive"]) for k in unknown):
        warnings.warn("the lea_ai_audit evaluator did not audit: its evaluator_config names no "
                      "sensitive attributes — pass evaluators=['lea_ai_audit'] and "
                      "evaluator_config={'lea_ai_audit': {'sensitive': [...]}} to audit",
                      EvaluatorWarning, stacklevel=5)
        return None
    if unknown:
        key = unknown[0]
        hint = close_matches(str(key), CONFIG_KEYS, n=1)
        raise InputError(f"evaluator_config key {key!r} is not one the lea_ai_audit evaluator "
                         "takes" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                         f"use only {', '.join(CONFIG_KEYS)}; settings of other evaluators go "
                         "in their own entry: evaluator_config={'lea_ai_audit': {...}, "
                         "'default': {...}}")
    if not config.get("sensitive"):
        raise InputError("the lea_ai_audit evaluator needs the sensitive attributes: "
                         "evaluator_config={'lea_ai_audit': {'sensitive': [...]}}",
                         "name the sensitive attribute columns of the data")
    return config


def _names(value: Any, what: str) -> list[str]:
    """A column name or a list of them, as a list of str."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InputError(f"{what} must be a column name or a list of them, got "
                     f"{type(value).__name__}", "pass e.g. ['ethnicity', 'sex']")


# -- the model ---------------------------------------------------------------------------------
def _raw_model(model: Any) -> Any:
    """The estimator inside a PyFuncModel (None when its flavour does not expose one)."""
    get = getattr(model, "get_raw_model", None)
    if callable(get):
        try:
            return get()
        except Exception:  # NotImplementedError: a served model, a flavour without one
            pass
    return getattr(getattr(model, "_model_impl", None), "sklearn_model", None)


def _sklearn_like(raw: Any) -> bool:
    """A classifier audit(model=...) can use: predict, and predict_proba or fit/get_params."""
    if raw is None or not callable(getattr(raw, "predict", None)):
        return False
    return callable(getattr(raw, "predict_proba", None)) or (
        callable(getattr(raw, "fit", None)) and callable(getattr(raw, "get_params", None)))


def _signature_inputs(model: Any) -> list[str] | None:
    """The input column names of the model's signature, if it has named inputs."""
    try:
        schema = model.metadata.get_input_schema()
    except Exception:  # no metadata, no signature
        return None
    if schema is None or not schema.has_input_names():
        return None
    return [str(n) for n in schema.input_names()]


def _model_features(config: dict[str, Any], model: Any, raw: Any) -> tuple[list[str] | None,
                                                                           str]:
    """The model's inputs (None: every column but the target and the sensitive ones) and
    where the list comes from."""
    if "features" in config:
        return _names(config["features"], "evaluator_config 'features'"), \
            "evaluator_config 'features'"
    names = _signature_inputs(model)
    if names:
        return names, "the model's signature"
    given = getattr(raw, "feature_names_in_", None)
    if given is not None:
        return [str(f) for f in given], "the model's feature_names_in_"
    return None, ""


def _pyfunc_decisions(model: Any, X: Any, column: str) -> Any:
    """The pyfunc model's decisions on ``X``, one per row."""
    import numpy as np
    import pandas as pd

    try:
        out = model.predict(X)
    except Exception as exc:  # the model's own error
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise ModelError(f"the model failed to predict on the evaluation data: "
                         f"{type(exc).__name__}: {first}",
                         "pass data= with the model's input columns, or name them in "
                         "evaluator_config 'features'") from exc
    if isinstance(out, pd.DataFrame):
        if column in out.columns:
            out = out[column]
        elif out.shape[1] == 1:
            out = out.iloc[:, 0]
        else:
            shown = ", ".join(repr(str(c)) for c in list(out.columns)[:6])
            raise ModelError(f"the model returns {out.shape[1]} columns ({shown})",
                             "pass predictions='<the column with the decision>' to "
                             "mlflow.models.evaluate")
    arr = np.asarray(getattr(out, "values", out))
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1 or arr.shape[0] != len(X):
        raise ModelError(f"the model returned an array of shape {arr.shape} for {len(X)} rows",
                         "audit a classifier that returns one decision per row")
    return arr


# -- the reference -----------------------------------------------------------------------------
def _reference(value: Any, tmp: str) -> Any:
    """The reference data as a DataFrame: given, read from a file, or downloaded from MLflow."""
    import pandas as pd

    if value is None or isinstance(value, pd.DataFrame):
        return value
    df = getattr(value, "df", None)  # mlflow.data.pandas_dataset.PandasDataset
    if isinstance(df, pd.DataFrame):
        return df
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"evaluator_config 'reference' must be a DataFrame, a file or an "
                         f"MLflow artifact URI, got {type(value).__name__}",
                         "pass the training data: a pandas DataFrame, 'train.parquet' or "
                         "'runs:/<run_id>/train.parquet'")
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from .cli import _read_table

    parsed = urlparse(value)
    if parsed.scheme == "file":
        return _read_table(url2pathname(parsed.path), "reference")
    if len(parsed.scheme) <= 1:  # a path (C:\ included)
        return _read_table(value, "reference")
    import mlflow

    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=value, dst_path=tmp,
                                                    tracking_uri=mlflow.get_tracking_uri())
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise InputError(f"reference {value!r} could not be downloaded "
                         f"({type(exc).__name__}: {first})",
                         "pass the URI of a CSV or Parquet artifact, e.g. "
                         "runs:/<run_id>/train.parquet, on a reachable tracking server"
                         ) from exc
    try:
        return _read_table(local, "reference")
    except LeaAuditError as exc:  # name the URI, not the temporary copy
        try:
            renamed = type(exc)(exc.what.replace(repr(local), repr(value)), exc.fix)
        except TypeError:  # pragma: no cover - an error class with another signature
            raise exc from None
        raise renamed from None


# -- the audit ---------------------------------------------------------------------------------
def _evaluate(result_cls: Any, *, dataset: Any, run_id: str, config: dict[str, Any],
              model: Any, predictions: str | None = None) -> Any:
    import mlflow
    import numpy as np
    import pandas as pd

    from .runner import audit

    X = dataset.features_data
    if not isinstance(X, pd.DataFrame):
        raise InputError("the lea_ai_audit evaluator needs data= as a pandas DataFrame",
                         "pass the cases as a DataFrame (or mlflow.data.from_pandas) with "
                         "named columns, the sensitive attributes among them")
    target = dataset.targets_name
    if not target or dataset.labels_data is None:
        raise InputError("the lea_ai_audit evaluator needs the outcome",
                         "pass targets='<column>' to mlflow.models.evaluate")
    target = str(target)
    sensitive = _names(config["sensitive"], "evaluator_config 'sensitive'")
    missing = [s for s in sensitive if s not in X.columns]
    if missing:
        hint = close_matches(missing[0], X.columns, n=1)
        raise DataError(f"sensitive column {missing[0]!r} is not in the evaluation data"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                        "keep the sensitive attributes in data= (feature_names= of "
                        "mlflow.models.evaluate leaves the other columns out; name the model's "
                        "inputs in evaluator_config 'features' instead)")

    frame = X.copy(deep=False)  # new columns are added to the copy only

    def free(name: str, role: str, fix: str) -> str:
        """``name`` for a new column of ``frame``; refused when a column has it already."""
        if name in frame.columns:
            raise InputError(f"the {role} column {name!r} is also a column of the evaluation "
                             "data", fix)
        return name

    frame[free(target, "target", "rename that column of the data, or pass another targets= "
                                 "to mlflow.models.evaluate")] = np.asarray(dataset.labels_data)
    kwargs: dict[str, Any] = {k: config[k] for k in PASSED_THROUGH if k in config}
    features = _names(config["features"], "evaluator_config 'features'") \
        if "features" in config else None
    with tempfile.TemporaryDirectory(prefix="lea-eval-ref-") as tmp:
        reference = _reference(config.get("reference"), tmp)  # read into memory
    if model is not None:
        raw = _raw_model(model)
        features, source = _model_features(config, model, raw)
        if features is not None and target in features:
            raise InputError(f"{source} names the target {target!r} as a model input",
                             "the model must not see the outcome: leave it out of the "
                             "model's inputs")
        if _sklearn_like(raw):
            if "score" in kwargs:
                raise InputError("evaluator_config 'score' names a score column, but a model "
                                 "was given: the audit scores the cases with the model",
                                 "drop 'score', or evaluate the tool's exported columns "
                                 "without model= (predictions='<column>' and 'score')")
            kwargs["model"] = raw
        else:
            if features is None:
                outputs = {config.get("score")} - {None}
                features = [c for c in X.columns if c not in set(sensitive) | outputs]
            absent = [f for f in features if f not in X.columns]
            if absent:
                hint = close_matches(absent[0], X.columns, n=1)
                raise ModelError(f"the model needs feature(s) not in the evaluation data: "
                                 f"{', '.join(map(repr, absent[:5]))}"
                                 + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                                 f"pass data= with the model's inputs ({source})")
            column = free(str(predictions) if predictions else PREDICTION_COLUMN, "prediction",
                          "pass predictions='<another name>' to mlflow.models.evaluate for the "
                          "model's decisions")
            frame[column] = _pyfunc_decisions(model, X[features], column)
            kwargs["prediction"] = column
            warnings.warn(f"the lea_ai_audit evaluator audits the predictions of the model "
                          f"({type(raw if raw is not None else model).__name__}), not the "
                          "model itself: it holds no scikit-learn-compatible estimator, so the "
                          "explanation and robustness checks are skipped — log a "
                          "scikit-learn-compatible model (mlflow.sklearn.log_model) to run "
                          "them", EvaluatorWarning, stacklevel=5)
    elif dataset.has_predictions:
        column = free(str(dataset.predictions_name), "prediction",
                      "pass another predictions= to mlflow.models.evaluate")
        frame[column] = np.asarray(dataset.predictions_data)
        kwargs["prediction"] = column
    elif "score" not in kwargs:
        raise InputError("nothing to audit: no model, predictions or scores",
                         "pass model= or predictions='<column>' to mlflow.models.evaluate, or "
                         "the score column as evaluator_config 'score'")

    with tempfile.TemporaryDirectory(prefix="lea-eval-") as tmp:
        rep = audit(frame, target=target, sensitive=sensitive, features=features,
                    reference=reference, track=False, **kwargs)
        metrics = report_metrics(rep, full=True)
        client = _client(str(mlflow.get_tracking_uri()))
        run = client.get_run(run_id)
        params = {metric_name(f"lea.{k}"): v for k, v in report_params(rep).items()}
        tags = report_tags(rep)
        for own in ("mlflow.runName", "mlflow.note.content"):  # the user's run keeps its own
            if run.data.tags.get(own):
                tags.pop(own, None)
        _log_values(client, run_id, params=params, metrics=report_metrics(rep), tags=tags)
        _log_tables(client, run_id, rep, Path(tmp) / "tables")
        _log_datasets(client, run_id, rep)
        from .cards import write_cards

        base = Path(tmp) / "report"
        rep.save(base)
        write_cards(rep, base, report_dir=base)
        for path, folder in _artifact_files(base, rep):
            client.log_artifact(run_id, str(path),
                                ARTIFACT_DIR + (f"/{folder}" if folder else ""))
        artifacts = _artifacts(base, run.info.artifact_uri)
    return result_cls(metrics=metrics, artifacts=artifacts, run_id=run_id)


def _artifacts(base: Path, artifact_uri: str) -> dict[str, Any]:
    """EvaluationArtifact of the report and each card, their content read from ``base``."""
    from mlflow.models.evaluation.artifacts import JsonEvaluationArtifact, TextEvaluationArtifact

    from ._io import strict_json

    root = str(artifact_uri).rstrip("/")
    out: dict[str, Any] = {}
    for name, (file, kind) in ARTIFACTS.items():
        path = base / file
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        uri = f"{root}/{ARTIFACT_DIR}/{file}"
        out[name] = (JsonEvaluationArtifact(uri=uri, content=strict_json(text)) if kind == "json"
                     else TextEvaluationArtifact(uri=uri, content=text))
    return out


def __getattr__(name: str) -> Any:
    if name == "LeaAuditEvaluator":  # built on first use: mlflow is imported only then
        cls = _make_evaluator()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
