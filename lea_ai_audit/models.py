"""Loading a model to audit from a file or an MLflow model URI, safely.

A pickle (``.pkl``, ``.pickle``, ``.joblib``) runs whatever code it contains when it is loaded,
so it is refused unless the user says they trust it (``trust=True``, ``--trust-model``). The
safe formats are preferred:

- **skops** (``.skops``): loaded with ``skops.io.load``, which builds only the types it knows;
  a file that needs other types (e.g. a LightGBM booster) is refused until the user trusts it,
  and the error lists those types;
- **MLflow model URIs** (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``, ``runs:/ID/PATH``):
  the model comes from the user's own tracking server or registry, where it was logged by
  someone with access to it, and is loaded with ``mlflow.sklearn.load_model``.

Examples
--------
>>> from lea_ai_audit.models import load_model
>>> model, info = load_model("model.skops")  # doctest: +SKIP
>>> info["format"], info["sha256"][:8]  # doctest: +SKIP
('skops', '3f9a0c1e')
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._io import sha256_file
from .errors import InputError, ModelError

__all__ = ["PICKLE_SUFFIXES", "URI_SCHEMES", "load_model"]

PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pck")
URI_SCHEMES = ("models:/", "runs:/")


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow and alembic log INFO lines (creating tables, ...) on stderr: keep them out of
    the CLI's one-line errors."""
    loggers = [logging.getLogger(n) for n in ("mlflow", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _load_uri(uri: str) -> tuple[Any, dict[str, Any]]:
    try:
        import mlflow.sklearn
    except ImportError as exc:  # pragma: no cover - mlflow is a dependency
        raise InputError("loading an MLflow model URI needs mlflow",
                         "pip install mlflow, or pass a .skops file") from exc
    try:
        with _quiet_mlflow(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = mlflow.sklearn.load_model(uri)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load the MLflow model {uri!r}: {first}",
                         "check the URI (models:/NAME/VERSION, runs:/ID/PATH), "
                         "MLFLOW_TRACKING_URI, and that it was logged with mlflow.sklearn"
                         ) from exc
    return model, {"uri": uri, "format": "mlflow"}


def _load_skops(path: Path, trust: bool) -> Any:
    try:
        import skops.io as sio
    except ImportError as exc:
        raise InputError("loading a .skops model needs skops",
                         "pip install skops (or pip install 'lea-ai-audit[models]')") from exc
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:
        raise ModelError(f"model file {str(path)!r} is not a readable skops file "
                         f"({type(exc).__name__})", "save the model with skops.io.dump") from exc
    if untrusted and not trust:
        shown = ", ".join(untrusted[:6]) + (" ..." if len(untrusted) > 6 else "")
        raise ModelError(f"model file {str(path)!r} needs types that skops does not trust by "
                         f"default: {shown}",
                         "check that these are the model's own classes, then pass "
                         "--trust-model (trust=True) to load them")
    try:
        return sio.load(path, trusted=untrusted or None)
    except Exception as exc:
        raise ModelError(f"model file {str(path)!r} could not be loaded: "
                         f"{type(exc).__name__}: {exc}", "save the model again with skops.io.dump"
                         ) from exc


def load_model(source: str, *, trust: bool = False) -> tuple[Any, dict[str, Any]]:
    """Load the model at ``source`` (a file path or an MLflow model URI).

    Parameters
    ----------
    source : str
        ``model.skops``, ``models:/NAME/VERSION``, ``runs:/ID/PATH``, or a pickle/joblib file.
    trust : bool
        Load a pickle, or a skops file with types skops does not trust by default. Only for
        files you made yourself: loading a pickle runs the code inside it.

    Returns
    -------
    (model, info)
        ``info`` holds ``format`` and either ``path`` and ``sha256`` or ``uri``.

    Raises
    ------
    InputError, ModelError
        A missing file, an unknown format, a pickle without ``trust``, a model that fails to
        load — each with what to do.
    """
    src = str(source)
    if src.startswith(URI_SCHEMES):
        return _load_uri(src)
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
