"""Checks: one module per area, each registering its checks under stable string ids.

A check is a small class: ``id``, parameters stored in ``__init__`` (no logic there, as in
scikit-learn), ``validate()`` for the parameter values, and ``run(ctx) -> CheckResult``.
Failures are results, never exceptions; an exception raised inside ``run`` becomes an ERROR
result with the message as evidence (the audit runner does that).

Examples
--------
>>> from lea_ai_audit.checks import get_check, available_checks
>>> "fairness.disparity" in available_checks()
True
>>> get_check("fairness.disparity")(metric="fpr", max_difference=0.1).params()["metric"]
'fpr'
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import PolicyError
from ..results import CheckResult, Evidence, Status

if TYPE_CHECKING:
    from ..context import AuditContext

__all__ = ["Check", "available_checks", "get_check", "register"]

_REGISTRY: dict[str, type[Check]] = {}


class Check:
    """Base class of every check.

    Subclasses set ``id`` (stable, dotted: ``"<area>.<name>"``) and ``title``, store their
    parameters in ``__init__`` under the same names, and implement :meth:`run`.
    """

    id: ClassVar[str] = ""
    title: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        """The parameters given to ``__init__`` (scikit-learn's ``get_params``)."""
        sig = inspect.signature(type(self).__init__)
        return {name: getattr(self, name) for name in sig.parameters
                if name != "self" and hasattr(self, name)}

    def validate(self) -> None:
        """Raise ``ValueError`` for parameter values that cannot work. Called at policy load."""

    def run(self, ctx: AuditContext) -> CheckResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def start(self, ctx: AuditContext) -> None:
        """Optional: begin slow, self-contained work before the audit reaches this check.

        The runner calls it for every check once the context is built, then :meth:`run` in
        order. A check may hand work to :mod:`lea_ai_audit._background` here and collect it in
        :meth:`run`; ``run`` must give the same result whether or not ``start`` was called
        (or raised), and whatever ``start`` began must stop in :meth:`cancel`.
        """

    def cancel(self) -> None:
        """Stop what :meth:`start` began and :meth:`run` did not collect (safe to repeat)."""

    def result(self, status: Status, message: str, *, metrics: dict[str, Any] | None = None,
               evidence: list[Evidence] | tuple[Evidence, ...] = ()) -> CheckResult:
        """A result of this check; the audit runner fills in the requirement it serves."""
        return CheckResult(check_id=self.id, requirement_id="", status=status, message=message,
                           metrics=metrics or {}, evidence=tuple(evidence), params=self.params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def register(cls: type[Check]) -> type[Check]:
    """Class decorator: make ``cls`` available under ``cls.id``."""
    if not cls.id or "." not in cls.id:
        raise ValueError(f"check {cls.__name__} needs a dotted id such as 'fairness.disparity'")
    if cls.id in _REGISTRY and _REGISTRY[cls.id] is not cls:
        raise ValueError(f"check id {cls.id!r} is registered twice")
    _REGISTRY[cls.id] = cls
    return cls


def _load_builtin() -> None:
    """Import every module of this package (each registers its checks when imported)."""
    import importlib
    import pkgutil

    for m in pkgutil.iter_modules(__path__):
        if not m.name.startswith("_"):
            importlib.import_module(f"{__name__}.{m.name}")


def available_checks() -> dict[str, type[Check]]:
    """Every registered check, by id."""
    _load_builtin()
    return dict(sorted(_REGISTRY.items()))


def get_check(check_id: str) -> type[Check]:
    """The check class registered under ``check_id``."""
    checks = available_checks()
    try:
        return checks[check_id]
    except KeyError:
        raise PolicyError(f"unknown check {check_id!r}",
                          f"use one of: {', '.join(checks)}") from None


def make_check(check_id: str, params: dict[str, Any]) -> Check:
    """Instantiate and validate a check; a ``PolicyError`` says what is wrong."""
    cls = get_check(check_id)
    sig = inspect.signature(cls.__init__)
    try:
        sig.bind(None, **params)
    except TypeError as exc:
        allowed = [p for p in sig.parameters if p != "self"]
        raise PolicyError(f"check {check_id!r}: {exc}",
                          f"its parameters are: {', '.join(allowed) or 'none'}") from None
    check = cls(**params)
    try:
        check.validate()
    except ValueError as exc:
        raise PolicyError(f"check {check_id!r}: {exc}", "fix the value in the policy") from None
    return check
