"""A time budget for the audited model's calls, with progress on long work.

An audit calls the model many times (its decisions, then explanations, robustness and
proxies). A model uploaded by someone else may take seconds or hours per call; without a
budget the audit would run on with no end and no sign of life. While an audit runs, the
model's ``predict``, ``predict_proba`` and ``decision_function`` are timed (the model object
itself is unchanged afterwards):

==================================  ========  ==============================================
variable                            default   what it bounds
==================================  ========  ==============================================
``LEA_AUDIT_MODEL_CALL_TIMEOUT``    ``300``   seconds of one call of the model
``LEA_AUDIT_MODEL_BUDGET``          ``3600``  seconds of all the model's calls in one audit
==================================  ========  ==============================================

``0`` or ``none`` switches a limit off. A call that overruns is stopped (in the main thread,
by an alarm signal, as soon as the model's code returns to Python; native code that never
does is stopped when it returns) and the audit ends with :class:`ModelBudgetError`: the
one-line error and exit code 2, nothing written. Once the model's calls have taken more than
``PROGRESS_AFTER`` seconds, a progress line (calls, rows, seconds of the budget) goes to the
``progress`` callback: the CLI shows it in its progress bar on a terminal and prints it on
stderr every ``PROGRESS_EVERY`` seconds in a log.

Examples
--------
>>> class M:
...     def predict(self, X):
...         return [0] * len(X)
>>> m = M()
>>> with metered(m, Budget(per_call=5, total=10)) as meter:
...     _ = m.predict([1, 2, 3])
>>> meter.calls, meter.rows, "predict" in vars(m)
(1, 3, False)
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError, ModelError

__all__ = ["Budget", "Meter", "ModelBudgetError", "budget_from_env", "current", "metered"]

METHODS = ("predict", "predict_proba", "decision_function")
DEFAULTS = {"LEA_AUDIT_MODEL_CALL_TIMEOUT": 300.0, "LEA_AUDIT_MODEL_BUDGET": 3600.0}
PROGRESS_AFTER = 5.0
PROGRESS_EVERY = 30.0


class ModelBudgetError(ModelError):
    """The model's calls took longer than the budget allows."""


@dataclass(frozen=True)
class Budget:
    """Seconds for one call and for all calls (``None``: no limit)."""

    per_call: float | None = DEFAULTS["LEA_AUDIT_MODEL_CALL_TIMEOUT"]
    total: float | None = DEFAULTS["LEA_AUDIT_MODEL_BUDGET"]


def _seconds(var: str) -> float | None:
    text = os.environ.get(var, "").strip()
    if not text:
        return DEFAULTS[var]
    if text.lower() in ("0", "none", "off"):
        return None
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"{var}={text!r} is not a number of seconds",
                         f"set {var} to a positive number of seconds (0 or none: no limit)")
    return value


def budget_from_env() -> Budget:
    """The budget set by LEA_AUDIT_MODEL_CALL_TIMEOUT and LEA_AUDIT_MODEL_BUDGET."""
    return Budget(per_call=_seconds("LEA_AUDIT_MODEL_CALL_TIMEOUT"),
                  total=_seconds("LEA_AUDIT_MODEL_BUDGET"))


class _Alarm(BaseException):
    """Raised by the alarm handler inside an overrunning call (a BaseException, so that a
    model's or library's ``except Exception`` cannot swallow it)."""


@dataclass
class Meter:
    """Counts and times the model's calls during one audit."""

    budget: Budget
    progress: Callable[[str], None] | None = None
    calls: int = 0
    rows: int = 0
    seconds: float = 0.0
    error: ModelBudgetError | None = None
    _depth: int = 0
    _last_note: float = field(default=0.0)

    def note(self) -> str:
        limit = f" of the {_s(self.budget.total)} s budget" if self.budget.total else ""
        return (f"model: {self.calls:,} call(s), {self.rows:,} rows, "
                f"{self.seconds:,.0f} s{limit}")

    def _fail(self, what: str, fix: str) -> ModelBudgetError:
        self.error = self.error or ModelBudgetError(what, fix)
        return self.error

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if self._depth:  # predict() calling predict_proba(): one call, timed once
                return fn(*args, **kwargs)
            if self.error is not None:
                raise self.error
            b = self.budget
            left = None if b.total is None else b.total - self.seconds
            if left is not None and left <= 0:
                raise self._over_total()
            limit = min((x for x in (b.per_call, left) if x is not None), default=None)
            alarm = (limit is not None and threading.current_thread() is threading.main_thread()
                     and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN,
                                                              None))
            self._depth += 1
            t0 = time.perf_counter()
            previous = None
            rang = False
            try:
                if alarm:
                    previous = signal.signal(signal.SIGALRM, _raise_alarm)
                    signal.setitimer(signal.ITIMER_REAL, limit)
                out = fn(*args, **kwargs)
            except _Alarm:
                rang = True
            finally:
                if alarm:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    signal.signal(signal.SIGALRM, previous or signal.SIG_DFL)
                self._depth -= 1
                took = time.perf_counter() - t0
                self.seconds += took
                self.calls += 1
                self.rows += _rows(args)
            if rang:
                raise self._overrun(name, took, limit, stopped=True)
            if b.per_call is not None and took > b.per_call:
                raise self._overrun(name, took, b.per_call)
            if b.total is not None and self.seconds > b.total:
                raise self._over_total()
            self._report()
            return out

        call.__wrapped__ = fn  # type: ignore[attr-defined]
        return call

    def _overrun(self, name: str, took: float, limit: float | None, stopped: bool = False
                 ) -> ModelBudgetError:
        b = self.budget
        if b.per_call is not None and (limit is None or limit >= b.per_call):
            how = (f"ran longer than the {_s(b.per_call)} s allowed per call (stopped after "
                   f"{took:,.1f} s)" if stopped else
                   f"took {took:,.1f} s, more than the {_s(b.per_call)} s allowed per call")
            return self._fail(
                f"one call of the model's {name}() {how}", "audit fewer rows, a faster model, or "
                "raise LEA_AUDIT_MODEL_CALL_TIMEOUT (seconds; 0: no limit)")
        return self._over_total()

    def _over_total(self) -> ModelBudgetError:
        return self._fail(
            f"the model's calls took more than the {_s(self.budget.total)} s budget of one "
            f"audit ({self.calls:,} call(s) on {self.rows:,} rows)",
            "audit fewer rows, a faster model, or raise LEA_AUDIT_MODEL_BUDGET (seconds; 0: no "
            "limit)")

    def _report(self) -> None:
        if self.progress is None or self.seconds < PROGRESS_AFTER:
            return
        now = time.monotonic()
        if now - self._last_note >= 1.0:
            self._last_note = now
            self.progress(self.note())


def _s(x: float | None) -> str:
    return "?" if x is None else (f"{x:,.0f}" if x >= 10 else f"{x:.3g}")


def _raise_alarm(signum: int, frame: Any) -> None:
    raise _Alarm


def _rows(args: tuple[Any, ...]) -> int:
    if not args:
        return 0
    try:
        return len(args[0])
    except Exception:  # a sparse matrix, a scalar: count what we can
        shape = getattr(args[0], "shape", None)
        return int(shape[0]) if shape else 0


@contextlib.contextmanager
def metered(model: Any, budget: Budget | None = None,
            progress: Callable[[str], None] | None = None) -> Iterator[Meter]:
    """Time ``model``'s calls within the block (see the module docstring); restore it after."""
    meter = Meter(budget or budget_from_env(), progress)
    token = _CURRENT.set(meter)
    patched: dict[str, Any] = {}
    own = getattr(model, "__dict__", None)
    if model is not None and isinstance(own, dict):
        for name in METHODS:
            try:
                fn = getattr(model, name)
            except Exception:  # available_if raises AttributeError, others more
                continue
            if not callable(fn):
                continue
            patched[name] = own.get(name, _MISSING)
            try:
                setattr(model, name, meter.wrap(name, fn))
            except Exception:  # a model that refuses attributes: not timed
                patched.pop(name)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)
        for name, before in patched.items():
            if before is _MISSING:
                own.pop(name, None)  # type: ignore[union-attr]
            else:
                own[name] = before  # type: ignore[index]


_MISSING = object()
_CURRENT: contextvars.ContextVar[Meter | None] = contextvars.ContextVar("lea_audit_meter",
                                                                      default=None)


def current() -> Meter | None:
    """The meter of the audit running in this context, if any."""
    return _CURRENT.get()
