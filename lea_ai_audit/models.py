"""Loading a model to audit from a file or an MLflow model URI, safely.

A pickle (``.pkl``, ``.pickle``, ``.joblib``) runs whatever code it contains when it is loaded,
so it is refused unless the user says they trust it (``trust=True``, ``--trust-model``). The
safe formats are preferred:

- **skops** (``.skops``): loaded with ``skops.io.load``, which builds only the types it knows;
  a file that needs other types (e.g. a LightGBM booster) is refused until the user trusts it,
  and the error lists those types;
- **MLflow model URIs** (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/ID/PATH``):
  a registered model may have been logged by anyone with access to the registry, so the same
  rule holds. Only the model's ``MLmodel`` file (YAML) is read first. A model logged with
  ``mlflow.sklearn.log_model(..., serialization_format="skops")`` is loaded like a ``.skops``
  file: its ``model.skops`` alone is downloaded and loaded with ``skops.io.load``, types skops
  does not trust by default only with ``trust`` (the ``skops_trusted_types`` written in the
  ``MLmodel`` file by whoever logged the model are ignored). The sklearn flavour's other
  formats, ``cloudpickle`` (MLflow 2's default, and Databricks') and ``pickle``, are pickles:
  refused unless the user trusts the model, which is then loaded with
  ``mlflow.sklearn.load_model``.

Examples
--------
>>> from lea_ai_audit.models import load_model
>>> model, info = load_model("model.skops")  # doctest: +SKIP
>>> info["format"], info["sha256"][:8]  # doctest: +SKIP
('skops', '3f9a0c1e')
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

from ._io import sha256_file
from .errors import InputError, ModelError
from .tracking import _quiet_mlflow

__all__ = ["PICKLE_SUFFIXES", "URI_SCHEMES", "load_model"]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck")
URI_SCHEMES = ("models:/", "runs:/")


def _uri_error(uri: str, exc: Exception) -> ModelError:
    from .tracking import _safe_uri

    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    where = ""
    with contextlib.suppress(Exception):
        import mlflow

        where = f" (registry {_safe_uri(mlflow.get_registry_uri())})"
    return ModelError(f"cannot load the MLflow model {uri!r}{where}: {first}",
                      "check the URI (models:/NAME/VERSION, runs:/ID/PATH), the tracking URI "
                      "(--tracking-uri, MLFLOW_TRACKING_URI or tracking-uri in lea-audit.yaml), "
                      "and that it was logged with mlflow.sklearn")


def _sklearn_flavor(uri: str) -> dict[str, Any]:
    """The sklearn flavour of the model at ``uri``, from its ``MLmodel`` file only (YAML:
    nothing of the model is downloaded or unpickled)."""
    try:
        import mlflow.models
    except ImportError as exc:  # pragma: no cover - mlflow is a dependency
        raise InputError("loading an MLflow model URI needs mlflow",
                         "pip install mlflow, or pass a .skops file") from exc
    try:
        with _quiet_mlflow(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flavors = mlflow.models.get_model_info(uri).flavors or {}
    except Exception as exc:
        raise _uri_error(uri, exc) from exc
    flavor = flavors.get("sklearn")
    if not isinstance(flavor, dict):
        raise ModelError(f"the MLflow model {uri!r} has no sklearn flavour (it has: "
                         f"{', '.join(sorted(map(str, flavors))) or 'none'})",
                         "log the model with mlflow.sklearn.log_model(..., "
                         "serialization_format='skops')")
    return flavor


def _load_uri(uri: str, trust: bool) -> tuple[Any, dict[str, Any]]:
    flavor = _sklearn_flavor(uri)
    fmt = str(flavor.get("serialization_format") or "pickle")  # MLflow's default when absent
    info: dict[str, Any] = {"uri": uri, "format": "mlflow", "serialization_format": fmt}
    if fmt == "skops":
        return _load_uri_skops(uri, flavor, trust), info
    if not trust:
        raise ModelError(
            f"the MLflow model {uri!r} is stored in the sklearn flavour's {fmt!r} format, a "
            "pickle: loading it would run any code it contains",
            "log it again with mlflow.sklearn.log_model(..., serialization_format='skops'); "
            "or, if you trust whoever logged it, pass --trust-model (trust=True)")
    import mlflow.sklearn

    try:
        with _quiet_mlflow(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlflow.sklearn.load_model(uri)
    except Exception as exc:
        raise _uri_error(uri, exc) from exc
    return model, info


def _load_uri_skops(uri: str, flavor: dict[str, Any], trust: bool) -> Any:
    """Download the model's skops file alone and load it as :func:`_load_skops` does (the types
    skops trusts by default, others only with ``trust``; the ``skops_trusted_types`` in the
    model's ``MLmodel`` file are not used)."""
    import tempfile

    import mlflow.artifacts

    rel = str(flavor.get("pickled_model") or "model.skops")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or not parts or ".." in parts:
        raise ModelError(f"the MLflow model {uri!r} names an odd model file {rel!r}",
                         "log the model again with mlflow.sklearn.log_model")
    with tempfile.TemporaryDirectory(prefix="lea-model-") as tmp:
        try:
            with _quiet_mlflow(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                local = mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{uri.rstrip('/')}/{Path(rel).as_posix()}", dst_path=tmp)
        except Exception as exc:
            raise _uri_error(uri, exc) from exc
        return _load_skops(Path(local), trust, label=f"the MLflow model {uri!r}")


def _load_skops(path: Path, trust: bool, label: str = "") -> Any:
    label = label or f"model file {str(path)!r}"
    try:
        import skops.io as sio
    except ImportError as exc:
        raise InputError("loading a .skops model needs skops",
                         "pip install skops (or pip install 'lea-ai-audit[models]')") from exc
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(f"{label} is not a readable skops file "
                         f"({type(exc).__name__})", "save the model with skops.io.dump") from exc
    if untrusted and not trust:
        shown = ", ".join(untrusted[:6]) + (" ..." if len(untrusted) > 6 else "")
        raise ModelError(f"{label} needs types that skops does not trust by "
                         f"default: {shown}",
                         "check that these are the model's own classes, then pass "
                         "--trust-model (trust=True) to load them")
    try:
        return sio.load(path, trusted=untrusted or None)
    except Exception as exc:
        raise ModelError(f"{label} could not be loaded: "
                         f"{type(exc).__name__}: {exc}", "save the model again with skops.io.dump"
                         ) from exc


def load_model(source: str, *, trust: bool = False, tracking_uri: str | None = None
               ) -> tuple[Any, dict[str, Any]]:
    """Load the model at ``source`` (a file path or an MLflow model URI).

    Parameters
    ----------
    source : str
        ``model.skops``, ``models:/NAME/VERSION``, ``runs:/ID/PATH``, or a pickle/joblib file.
    trust : bool
        Load a pickle (a pickle file, or an MLflow model logged in the sklearn flavour's
        ``cloudpickle`` or ``pickle`` format), or a skops file with types skops does not trust
        by default. Only for models you made yourself: loading a pickle runs the code inside
        it.
    tracking_uri : str, optional
        The MLflow tracking and registry URI of a model URI, in the audit's order: this, else
        ``MLFLOW_TRACKING_URI``, else the local store in ``~/.lea-ai-audit`` (never a
        ``mlflow.db`` in the working directory).

    Returns
    -------
    (model, info)
        ``info`` holds ``format`` and either ``path`` and ``sha256`` or ``uri`` and
        ``serialization_format`` (the MLflow sklearn flavour's).

    Raises
    ------
    InputError, ModelError
        A missing file, an unknown format, a pickle without ``trust``, a model that fails to
        load — each with what to do.
    """
    src = str(source)
    if src.startswith(URI_SCHEMES):
        from .tracking import use_tracking_uri

        with use_tracking_uri(tracking_uri):
            return _load_uri(src, trust)
    path = Path(src)
    if not path.exists():
        raise InputError(f"model file {src!r} does not exist",
                         "check the path (--model), or give an MLflow URI models:/NAME/VERSION")
    if path.is_dir():
        raise InputError(f"model path {src!r} is a directory",
                         "pass a .skops file, or an MLflow model URI (models:/NAME/VERSION)")
    suffix = path.suffix.lower()
    info: dict[str, Any] = {"path": str(path), "sha256": sha256_file(path)}
    if suffix == ".skops":
        return _load_skops(path, trust), {**info, "format": "skops"}
    if suffix in PICKLE_SUFFIXES:
        if not trust:
            raise ModelError(
                f"model file {src!r} is a pickle: loading it would run any code it contains",
                "save the model with skops (skops.io.dump(model, 'model.skops')) or log it to "
                "MLflow and pass models:/NAME/VERSION; or, if you made this file yourself, "
                "pass --trust-model")
        import joblib

        try:
            model = joblib.load(path)
        except Exception as exc:
            raise ModelError(f"model file {src!r} could not be unpickled: "
                             f"{type(exc).__name__}: {exc}",
                             "save the model again, preferably with skops") from exc
        return model, {**info, "format": "pickle"}
    raise InputError(f"model file {src!r} has an unknown format ({suffix or 'no suffix'})",
                     "save it with skops as .skops, or pass an MLflow URI models:/NAME/VERSION")
