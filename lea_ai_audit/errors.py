"""Typed exceptions of lea-ai-audit.

Every exception says *what* was wrong and *how to fix it*; ``str(exc)`` is the one line the CLI
prints after ``error:``. Exceptions are for misuse (bad input, a bad policy, an unfitted model);
a check that finds a problem in a model returns a FAIL result instead of raising.

Message templates are module constants so tests can import them (as fairlearn does).

Examples
--------
>>> from lea_ai_audit.errors import ColumnNotFoundError
>>> str(ColumnNotFoundError("target", "reoffend", ["reoffended", "age"]))  # doctest: +ELLIPSIS
"target column 'reoffend' is not in the data (did you mean 'reoffended'?) — ..."
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "ColumnNotFoundError",
    "DataError",
    "InputError",
    "LeaAuditError",
    "LimitError",
    "ModelError",
    "PolicyError",
    "ReportError",
    "close_matches",
]

COLUMN_NOT_FOUND = "{role} column {name!r} is not in the data{hint}"
COLUMN_NOT_FOUND_FIX = "pass the name of an existing column (columns: {columns})"
NOT_BINARY = "{role} column {name!r} must hold two values, found {found}"
NOT_BINARY_FIX = "encode it as 0/1 (1 = the positive outcome) or pass positive_label="
MISSING_VALUES = "{role} column {name!r} has {count} missing value(s) (first at row {row})"
MISSING_VALUES_FIX = "drop or impute those rows before the audit"
MULTICLASS_FIX = ("audit one outcome at a time: recode it as 0/1 (1 = the positive outcome, "
                  "the other values 0); positive_label= (--positive-label) names the positive "
                  "value of a two-valued column")
NOT_FINITE = "{role} column {name!r} has {count} infinite value(s) (first at row {row})"
NOT_FINITE_FIX = "replace them with finite scores on the tool's scale, or drop those rows"
MODEL_NOT_FINITE = "the model returned {count} {what} score(s) (first at row {row})"
MODEL_NOT_FINITE_FIX = "check the model and the features of that row"
MODEL_NAN = "the model's predict() returned NaN for {count} row(s) (first at row {row})"
MODEL_NAN_FIX = ("check those rows' features (missing values the model cannot handle?) and "
                 "the model; NaN is not a decision")
MODEL_NOT_LABELS = ("the model's predict() returns {shown}, which are not the target's labels "
                    "({labels})")
MODEL_REGRESSOR_FIX = ("it looks like a regressor: audit a classifier, or audit its output as "
                       "a score — put it in a column and pass score= with threshold= "
                       "(--score-col, --threshold)")
MODEL_LABEL_TYPE_FIX = ("the model's labels are {model_kind} where the target holds "
                        "{target_kind}: train the model on the target column as it is, or "
                        "convert the target to the model's labels")
MODEL_OTHER_LABELS_FIX = "train the model on this target, or pass the target the model predicts"
THRESHOLD_NOT_NUMBER = "threshold must be a number, got {got}"
THRESHOLD_NOT_FINITE = "threshold {value} is not a finite number"
THRESHOLD_FIX = "pass the cut-off as a number (threshold=, --threshold), e.g. 0.5 for probabilities"
THRESHOLD_OUT_OF_RANGE = ("threshold {threshold:g} is outside [0, 1], but {what} are "
                          "probabilities (from {lo:g} to {hi:g}): {effect}")
THRESHOLD_OUT_OF_RANGE_FIX = "pass a threshold between 0 and 1 (threshold=, --threshold)"
SCORES_NOT_PROBABILITIES = ("{what} range from {lo:g} to {hi:g}, outside [0, 1], and the "
                            "threshold is 0.5, the default cut-off for probabilities")
SCORES_NOT_PROBABILITIES_FIX = ("pass the cut-off on the scores' own scale (threshold=, "
                                "--threshold; e.g. the score from which the tool flags a case), "
                                "or rescale the scores to [0, 1]")
THRESHOLD_UNUSED = "threshold {threshold:g} is not used: {why}"
ONE_GROUP = "sensitive column {name!r} holds one group only ({label}): nothing can be compared"
ONE_GROUP_FIX = ("pass an attribute with at least two groups, or audit data that includes the "
                 "other groups")
ID_LIKE = ("sensitive column {name!r} has {groups} distinct values in {rows} rows: it looks "
           "like an identifier, not a group")
ID_LIKE_FIX = ("pass a group attribute such as ethnicity or sex (bin a continuous one, e.g. age, "
               "into bands first)")
TOO_MANY_GROUPS = ("{what} has {groups:,} groups, more than the {cap:,} a per-group audit is "
                   "set for: most would hold too few cases to be evidence, and the audit would "
                   "take long")
TOO_MANY_GROUPS_FIX = ("merge small groups into broader ones (e.g. regions instead of "
                       "postcodes), audit fewer attributes at once, or raise "
                       "LEA_AUDIT_MAX_GROUPS if you mean it")
UNKNOWN_CHECK = "policy {policy!r}: requirement {req!r} names unknown check {check!r}"
UNKNOWN_CHECK_FIX = "use one of: {known}"


def close_matches(name: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Names among ``candidates`` that look like ``name`` (case-insensitive), best first."""
    cands = [str(c) for c in candidates]
    lowered = {c.lower(): c for c in cands}
    hits = difflib.get_close_matches(str(name).lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


class LeaAuditError(Exception):
    """Base class: ``what`` went wrong and ``fix``, how to put it right.

    ``str(err)`` is ``"<what> — <fix>"``, the line the CLI prints after ``error:``.
    """

    def __init__(self, what: str, fix: str | None = None) -> None:
        self.what = what
        self.fix = fix
        super().__init__(f"{what} — {fix}" if fix else what)


class InputError(LeaAuditError, ValueError):
    """Arguments that cannot work together, or a file that cannot be read."""


class DataError(InputError):
    """The data cannot be audited as given (missing values, non-binary labels, ...)."""


class ColumnNotFoundError(DataError, KeyError):
    """A named column is missing; the message lists close matches."""

    def __init__(self, role: str, name: str, columns: Iterable[str]) -> None:
        cols = [str(c) for c in columns]
        matches = close_matches(name, cols)
        hint = f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""
        shown = ", ".join(repr(c) for c in cols[:12]) + (", ..." if len(cols) > 12 else "")
        super().__init__(
            COLUMN_NOT_FOUND.format(role=role, name=name, hint=hint),
            COLUMN_NOT_FOUND_FIX.format(columns=shown or "none"),
        )
        self.role, self.name, self.matches = role, name, matches

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return Exception.__str__(self)


class ModelError(InputError):
    """The model cannot be used: not fitted, no ``predict``, features that do not match."""


class PolicyError(LeaAuditError, ValueError):
    """A policy pack is malformed or names a check or parameter that does not exist."""


class ReportError(LeaAuditError, ValueError):
    """A report file cannot be read, has an unknown schema version, or cannot be written."""


class LimitError(InputError):
    """A configured limit was hit (e.g. the time limit of a schema's patterns): the audit stops
    with the one-line error and exit 2; it never becomes a check's result."""
