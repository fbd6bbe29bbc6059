"""lea-ai-audit: audit law-enforcement machine-learning models before and while they are used.

One call audits a fitted scikit-learn-compatible model, or a vendor's predictions and scores,
against a policy pack derived from the Council conclusions on Internal Security and European
Police Partnership (13083/1/20) and the EU AI Act:

>>> from lea_ai_audit import audit                                          # doctest: +SKIP
>>> report = audit(df, target="reoffended", sensitive=["ethnicity", "sex"], model=clf)
>>> report.status, report.checks, report.save("audit/")

Heavy modules (pandas, scikit-learn) load on first use, so ``import lea_ai_audit`` and
``lea-audit --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "Audit",
    "AuditContext",
    "AuditReport",
    "CheckResult",
    "Evidence",
    "Policy",
    "Reason",
    "Requirement",
    "Status",
    "__version__",
    "audit",
    "available_checks",
    "errors",
    "explain_case",
    "explain_cases",
    "list_policies",
    "load_policy",
]

_LAZY = {
    "audit": "runner", "Audit": "runner",
    "AuditContext": "context",
    "AuditReport": "results", "CheckResult": "results", "Evidence": "results",
    "Status": "results", "SCHEMA_VERSION": "results",
    "Policy": "policy", "Requirement": "policy", "load_policy": "policy",
    "list_policies": "policy",
    "available_checks": "checks",
    "Reason": "explain", "explain_case": "explain", "explain_cases": "explain",
    "errors": None,
}

if TYPE_CHECKING:  # pragma: no cover
    from . import errors
    from .checks import available_checks
    from .context import AuditContext
    from .explain import Reason, explain_case, explain_cases
    from .policy import Policy, Requirement, list_policies, load_policy
    from .results import SCHEMA_VERSION, AuditReport, CheckResult, Evidence, Status
    from .runner import Audit, audit


# The entry point lives in ``runner.py``, not ``audit.py``: a submodule named ``audit`` would
# replace the function ``lea_ai_audit.audit`` with itself as soon as it was imported.


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lea_ai_audit' has no attribute {name!r}")
    module = _LAZY[name]
    value = import_module(f".{name}" if module is None else f".{module}", __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
