"""Data schemas (pandera): infer one from reference data, read and write YAML, validate lazily.

The schema of the training (reference) data says what the model was built for: each column's
type, whether it may be empty, the range of its numbers and dates, and the categories of its
labels. The audited data is validated against it *lazily*: every failure of every column is
collected (pandera's ``lazy=True``) and summarised with its count and a few example values,
rather than stopping at the first one.

A schema a user supplies — a pandera ``DataFrameSchema``, a ``DataFrameModel`` class, or the
path of a pandera YAML file — overrides the inferred one. YAML is read with
``yaml.safe_load`` only: a file with tags that build Python objects (``!!python/...``) is
refused before anything in it runs.

A YAML schema is first checked against the declared shape of pandera's format
(:func:`lea_ai_audit._schemas.pandera_schema`): a key of the wrong type, a column key that is
neither pandera's nor the name of a check, or a pattern that is not a regular expression is an
:class:`~lea_ai_audit.errors.InputError` naming the field, before pandera reads it.

Patterns a schema brings — the argument of ``str_matches`` and ``str_contains`` checks (on
columns and on the index) and the name of a column declared with ``regex: true`` — never run
in Python's ``re`` (whose backtracking can take forever on a pattern such as ``^(a+)+$``):
lea-audit evaluates them itself with the ``regex`` module, under one time budget for the whole
validation. A pattern that cannot be evaluated within it is reported as a failure of the
shape of the data (the ``data.schema`` check fails and says so), never passed over. A pattern
that is not a valid regular expression is an ``InputError`` naming the column and the pattern.

Environment
-----------
LEA_AUDIT_PATTERN_TIMEOUT
    The time budget in seconds of the patterns of one validation (default 10; a positive
    number). The patterns are evaluated once per distinct value.

pandera is imported inside the functions: ``import lea_ai_audit`` stays fast.

Examples
--------
>>> import pandas as pd
>>> from lea_ai_audit.schema import infer_schema, schema_to_yaml, validate_schema
>>> ref = pd.DataFrame({"age": [21, 35, 60], "district": ["D01", "D02", "D01"]})
>>> schema = infer_schema(ref)
>>> "isin" in schema_to_yaml(schema)
True
>>> v = validate_schema(pd.DataFrame({"age": [30, 99], "district": ["D01", "D09"]}), schema)
>>> v.failing_rows, [(f.column, f.count) for f in v.failures]
(1, [('age', 1), ('district', 1)])
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._io import safe_yaml
from ._schemas import PATTERN_CHECKS as _PATTERN_CHECKS
from .errors import DataError, InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PATTERN_TIMEOUT", "PATTERN_TIMEOUT_ENV", "SchemaFailure", "SchemaValidation",
           "infer_schema", "load_schema", "pattern_timeout", "schema_from_yaml",
           "schema_to_yaml", "validate_schema"]

#: the default time budget (seconds) of the patterns of one validation
PATTERN_TIMEOUT = 10.0
#: the environment variable that sets it
PATTERN_TIMEOUT_ENV = "LEA_AUDIT_PATTERN_TIMEOUT"

#: a text column with at most this many distinct values gets an allowed-categories check
MAX_CATEGORIES = 50
#: failure kinds, in the words of the report
KINDS = {"column_in_dataframe": "missing column", "not_nullable": "missing values",
         "coerce_dtype": "wrong type", "dtype": "wrong type", "isin": "unknown category",
         "in_range": "out of range", "greater_than_or_equal_to": "out of range",
         "less_than_or_equal_to": "out of range", "field_uniqueness": "duplicates",
         "column_name_regex": "missing column", "str_matches": "does not match the pattern",
         "str_contains": "does not contain the pattern"}


@dataclass(frozen=True)
class SchemaFailure:
    """The failures of one check on one column.

    ``count`` is the number of failing values (rows); ``examples`` up to a few distinct
    failing values as text (empty when withheld, e.g. for identifier columns).
    """

    column: str
    check: str
    kind: str
    count: int
    examples: tuple[str, ...] = ()

    def as_row(self, n_rows: int) -> list[Any]:
        share = round(self.count / n_rows, 6) if n_rows else None
        return [self.column, self.kind, self.check, self.count, share,
                "; ".join(self.examples)]


@dataclass(frozen=True)
class SchemaValidation:
    """Every failure of a lazy validation, with counts.

    Attributes
    ----------
    n_rows : int
        Rows validated.
    failing_rows : int
        Rows with at least one failing value.
    failures : tuple of SchemaFailure
        One entry per (column, check) that failed.
    structural : tuple of str
        Failures of the frame as a whole (missing columns, checks that could not run).
    """

    n_rows: int
    failing_rows: int
    failures: tuple[SchemaFailure, ...] = ()
    structural: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    @property
    def failing_share(self) -> float:
        """Share of the rows with at least one failing value."""
        return self.failing_rows / self.n_rows if self.n_rows else 0.0

    def rows(self) -> list[list[Any]]:
        """Table rows: column, kind, check, count, share, examples."""
        return [f.as_row(self.n_rows) for f in self.failures]


# -- inference ---------------------------------------------------------------------------------
def _is_textual(series: pd.Series) -> bool:
    import pandas as pd

    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
                or pd.api.types.is_datetime64_any_dtype(series))


def infer_schema(reference: pd.DataFrame, *, max_categories: int = MAX_CATEGORIES,
                 columns: Iterable[str] | None = None, name: str | None = None) -> Any:
    """Infer a pandera ``DataFrameSchema`` from reference (training) data.

    For each column: its type (integers as pandas' nullable ``Int64``, so that a missing
    value is reported as missing rather than as a type error), whether it may be empty (it
    had missing values in the reference), the range of numbers and dates
    (``in_range(min, max)``), and for text or categorical columns with at most
    ``max_categories`` distinct values the allowed categories (``isin``). Text columns with
    more distinct values (identifiers, free text) get a type only. The schema coerces types
    (``coerce=True``) and accepts extra columns (``strict=False``): the audited data may
    carry the model's outputs.

    Parameters
    ----------
    reference : DataFrame
        The data the model was trained on.
    max_categories : int
        At most this many distinct values make a text column categorical.
    columns : list of str, optional
        Only these columns (default: all).
    name : str, optional
        The schema's name.

    Returns
    -------
    pandera.pandas.DataFrameSchema

    Examples
    --------
    >>> import pandas as pd
    >>> s = infer_schema(pd.DataFrame({"x": [1.5, None, 3.0], "g": ["a", "b", "a"]}))
    >>> s.columns["x"].nullable, [c.statistics for c in s.columns["g"].checks]
    (True, [{'allowed_values': ['a', 'b']}])
    """
    import pandas as pd
    import pandera.pandas as pa

    if not isinstance(reference, pd.DataFrame):
        raise InputError(f"reference must be a pandas DataFrame, got {type(reference).__name__}",
                         "load the training data with pandas first")
    if int(max_categories) < 1:
        raise InputError(f"max_categories must be at least 1, got {max_categories}",
                         "pass e.g. max_categories=50")
    wanted = [str(c) for c in reference.columns] if columns is None else [str(c) for c in columns]
    missing = [c for c in wanted if c not in reference.columns]
    if missing:
        raise DataError(f"column(s) {', '.join(map(repr, missing[:5]))} are not in the reference "
                        "data", "infer the schema from data that holds them")
    cols: dict[str, Any] = {}
    for col in wanted:
        s = reference[col]
        nullable = bool(s.isna().any())
        present = s.dropna()
        checks: list[Any] = []
        if pd.api.types.is_bool_dtype(s):
            dtype: Any = "boolean" if nullable else "bool"
        elif pd.api.types.is_integer_dtype(s):
            dtype = "Int64"
            if len(present):
                checks.append(pa.Check.in_range(int(present.min()), int(present.max())))
        elif pd.api.types.is_float_dtype(s):
            dtype = "float64"
            finite = present[present.abs() != float("inf")]
            if len(finite):
                checks.append(pa.Check.in_range(float(finite.min()), float(finite.max())))
        elif pd.api.types.is_datetime64_any_dtype(s):
            dtype = str(s.dtype)
            if len(present):
                checks.append(pa.Check.in_range(present.min(), present.max()))
        else:
            is_cat = isinstance(s.dtype, pd.CategoricalDtype)
            values = (list(s.cat.categories) if is_cat else pd.unique(present).tolist())
            dtype = "category" if is_cat else object
            if 0 < len(values) <= int(max_categories):
                allowed = sorted({str(v) if not isinstance(v, (int, float)) else v
                                  for v in values}, key=str)
                checks.append(pa.Check.isin(allowed))
        cols[col] = pa.Column(dtype, checks=checks or None, nullable=nullable, required=True)
    return pa.DataFrameSchema(cols, coerce=True, strict=False, name=name)


# -- YAML --------------------------------------------------------------------------------------
def schema_to_yaml(schema: Any) -> str:
    """The schema as pandera's YAML (``pandera.io``), readable by :func:`schema_from_yaml`.

    Raises ``InputError`` if the schema holds checks pandera cannot write (custom lambdas).

    Examples
    --------
    >>> import pandas as pd
    >>> text = schema_to_yaml(infer_schema(pd.DataFrame({"x": [1, 2]})))
    >>> text.splitlines()[0]
    'schema_type: dataframe'
    """
    from pandera.io import pandas_io

    schema = load_schema(schema)
    try:
        return str(pandas_io.to_yaml(schema))
    except Exception as exc:
        raise InputError(f"the schema cannot be written as YAML ({type(exc).__name__}: {exc})",
                         "use pandera's built-in checks (in_range, isin, ...) instead of "
                         "custom functions") from exc


def schema_from_yaml(source: str | os.PathLike[str]) -> Any:
    """Read a pandera schema from a YAML file (or YAML text), safely.

    Only plain YAML is accepted (``yaml.safe_load``): tags that construct Python objects are
    refused with an :class:`~lea_ai_audit.errors.InputError` before anything runs.

    Examples
    --------
    >>> s = schema_from_yaml("schema_type: dataframe\\ncolumns:\\n  x: {dtype: int64}\\n")
    >>> list(s.columns)
    ['x']
    """
    import yaml

    where: str
    if isinstance(source, os.PathLike) or (isinstance(source, str) and "\n" not in source
                                            and ":" not in source.split("/")[-1]):
        path = Path(source)
        where = f"schema file {str(path)!r}"
        if not path.is_file():
            raise InputError(f"{where} does not exist", "pass the path of a pandera YAML schema")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read {where}: {exc}", "pass a readable UTF-8 YAML file"
                             ) from exc
    else:
        text, where = str(source), "the schema YAML"
    try:
        data = safe_yaml(text)
    except yaml.constructor.ConstructorError as exc:
        tag = getattr(exc, "problem", "") or "an unknown tag"
        raise InputError(f"{where} holds a YAML tag that would build Python objects ({tag})",
                         "a pandera schema needs only plain values: remove the tag") from None
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date such as 2024-13-45
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{where} is not valid YAML: {first}",
                         "write it with pandera (schema.to_yaml()) or fix the syntax") from None
    from pandera.io import pandas_io

    from ._schemas import validate

    validate("pandera_schema", data, where)
    try:
        schema = pandas_io.deserialize_schema(data)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise InputError(f"{where} is not a valid pandera schema: {type(exc).__name__}: {first}",
                         "write it with pandera's DataFrameSchema.to_yaml()") from None
    _patterns(schema, where)  # every pattern compiles (column-name patterns included)
    return schema


def load_schema(source: Any) -> Any:
    """A pandera ``DataFrameSchema`` from a schema, a ``DataFrameModel`` class or a YAML path.

    Examples
    --------
    >>> import pandera.pandas as pa
    >>> class Cases(pa.DataFrameModel):
    ...     age: int = pa.Field(ge=16)
    >>> list(load_schema(Cases).columns)
    ['age']
    """
    import pandera.pandas as pa

    if isinstance(source, pa.DataFrameSchema):
        _patterns(source, "the schema")
        return source
    if isinstance(source, type) and issubclass(source, pa.DataFrameModel):
        try:
            schema = source.to_schema()
        except Exception as exc:
            raise InputError(f"the schema model {source.__name__} cannot be turned into a "
                             f"schema: {type(exc).__name__}: {exc}",
                             "fix the DataFrameModel's fields") from None
        _patterns(schema, f"the schema model {source.__name__}")
        return schema
    if isinstance(source, (str, os.PathLike)):
        return schema_from_yaml(source)
    raise InputError(f"schema must be a pandera DataFrameSchema, a DataFrameModel class or the "
                     f"path of a YAML file, got {type(source).__name__}",
                     "pass e.g. schema='schema.yaml' (--schema FILE)")


# -- patterns: evaluated with the `regex` module, under a time budget ---------------------------
def pattern_timeout() -> float:
    """The time budget (seconds) of the patterns of one validation: ``LEA_AUDIT_PATTERN_TIMEOUT``
    if set, else :data:`PATTERN_TIMEOUT`.

    Examples
    --------
    >>> pattern_timeout() > 0
    True
    """
    raw = os.environ.get(PATTERN_TIMEOUT_ENV, "").strip()
    if not raw:
        return PATTERN_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{PATTERN_TIMEOUT_ENV}={raw[:40]!r} is not a positive number of seconds",
                         f"unset it (default {PATTERN_TIMEOUT:g} s) or set e.g. "
                         f"{PATTERN_TIMEOUT_ENV}=30")
    return value


@dataclass(frozen=True)
class _Pattern:
    """A pattern a schema brings: on the values of a column or index level (``check`` is the
    pandera check) or on the column names (``check`` is None: a ``regex: true`` column)."""

    where: str          # "column", "index" or "column name"
    column: Any         # the column's key, or the index level's position
    label: str          # how the report names it, e.g. str_matches('^a+$')
    compiled: Any       # the pattern, compiled by `regex`
    search: bool        # str_contains searches; str_matches and column names match the start
    check: Any = None


def _compile(pattern: Any, what: str, where: str) -> Any:
    import regex

    flags = 0
    if isinstance(pattern, re.Pattern):
        for name in ("IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE", "ASCII"):
            if pattern.flags & getattr(re, name):
                flags |= getattr(regex, name)
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise InputError(f"{where}: the pattern of {what} is {type(pattern).__name__}, not a "
                         "regular expression", "write the pattern as text")
    try:
        return regex.compile(pattern, flags)
    except Exception as exc:  # regex.error; RecursionError for absurd nesting
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        shown = pattern if len(pattern) <= 60 else pattern[:59] + "…"
        raise InputError(f"{where}: the pattern {shown!r} of {what} is not a valid regular "
                         f"expression ({first})",
                         "fix the pattern (Python regular-expression syntax)") from None


def _label(check: Any) -> str:
    return str(getattr(check, "error", None) or getattr(check, "name", "check"))


def _index_levels(schema: Any) -> list[Any]:
    index = getattr(schema, "index", None)
    if index is None:
        return []
    return list(getattr(index, "indexes", None) or [index])


def _patterns(schema: Any, where: str) -> list[_Pattern]:
    """Every pattern of ``schema``, compiled; an ``InputError`` names a pattern that is not a
    regular expression, with its column."""
    out: list[_Pattern] = []
    for name, col in schema.columns.items():
        if getattr(col, "regex", False):
            out.append(_Pattern("column name", name, f"column name pattern {str(name)!r}",
                                _compile(name, f"the column name {str(name)!r} (regex: true)",
                                         where), search=False))
        for chk in getattr(col, "checks", None) or []:
            kind = _PATTERN_CHECKS.get(getattr(chk, "name", None) or "")
            if kind:
                pattern = (getattr(chk, "statistics", None) or {}).get("pattern")
                out.append(_Pattern("column", name, _label(chk), _compile(
                    pattern, f"{chk.name} on column {str(name)!r}", where),
                    search=kind == "search", check=chk))
    for i, level in enumerate(_index_levels(schema)):
        for chk in getattr(level, "checks", None) or []:
            kind = _PATTERN_CHECKS.get(getattr(chk, "name", None) or "")
            if kind:
                pattern = (getattr(chk, "statistics", None) or {}).get("pattern")
                shown = level.name if level.name is not None else f"level {i}"
                out.append(_Pattern("index", i, _label(chk), _compile(
                    pattern, f"{chk.name} on the index ({shown})", where),
                    search=kind == "search", check=chk))
    return out


class _Budget:
    """One time budget for every pattern of a validation."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.spent = False

    def run(self, compiled: Any, text: str, search: bool) -> bool | None:
        """Whether ``text`` matches; None once the budget is spent."""
        left = self.deadline - time.monotonic()
        if self.spent or left <= 0:
            self.spent = True
            return None
        try:
            hit = (compiled.search if search else compiled.match)(text, timeout=left)
        except TimeoutError:
            self.spent = True
            return None
        return hit is not None

    def message(self, label: str, on: str) -> str:
        return (f"{label} on {on} could not be evaluated within the {self.seconds:g} s time "
                f"limit of patterns ({PATTERN_TIMEOUT_ENV})")

    def error(self, label: str, on: str) -> Exception:
        from .errors import LimitError

        return LimitError(self.message(label, on),
                          f"simplify the pattern (nested repeats such as (a+)+ backtrack without "
                          f"end), or raise {PATTERN_TIMEOUT_ENV} (seconds)")


@dataclass
class _PatternOutcome:
    failures: list[SchemaFailure] = field(default_factory=list)
    structural: list[str] = field(default_factory=list)
    bad_index: set[Any] = field(default_factory=set)


def _without_patterns(schema: Any, data: pd.DataFrame, budget: _Budget, outcome: _PatternOutcome
                      ) -> tuple[Any, dict[Any, list[Any]]]:
    """``schema`` with its column-name patterns resolved against ``data``'s columns (as
    pandera would: ``match`` on each name) and its pattern checks taken out, so that pandera
    never runs a pattern; and the columns each ``regex: true`` column resolved to."""
    import copy

    columns: dict[Any, list[Any]] = {}
    for name, col in list(schema.columns.items()):
        if not getattr(col, "regex", False):
            columns[name] = [name]
            continue
        compiled = _compile(name, f"the column name {str(name)!r} (regex: true)", "the schema")
        label = f"column name pattern {str(name)!r}"
        matched: list[Any] = []
        for c in data.columns:
            hit = budget.run(compiled, str(c), search=False)
            if hit is None:
                break
            if hit and c not in schema.columns:
                matched.append(c)
        schema = schema.remove_columns([name])
        columns[name] = []
        if budget.spent:
            raise budget.error(label, "the column names")
        if not matched:
            if getattr(col, "required", True):
                outcome.failures.append(SchemaFailure(str(name), "column_name_regex",
                                                      "missing column", 0))
                outcome.structural.append(f"missing column: {name} (no column name matches "
                                          "the pattern)")
            continue
        plain = copy.deepcopy(col)
        plain.regex = False
        schema = schema.add_columns({c: plain.set_name(c) for c in matched})
        columns[name] = matched
    updates = {}
    for name, col in schema.columns.items():
        checks = list(getattr(col, "checks", None) or [])
        kept = [c for c in checks if getattr(c, "name", None) not in _PATTERN_CHECKS]
        if len(kept) != len(checks):
            updates[name] = {"checks": kept}
    if updates:
        schema = schema.update_columns(updates)
    if any(getattr(c, "name", None) in _PATTERN_CHECKS
           for lv in _index_levels(schema) for c in lv.checks or []):
        schema = copy.deepcopy(schema)
        for lv in _index_levels(schema):
            lv.checks = [c for c in lv.checks or []
                         if getattr(c, "name", None) not in _PATTERN_CHECKS]
    return schema, columns


def _evaluate(pat: _Pattern, values: pd.Series, coerce: bool, budget: _Budget
              ) -> pd.Series | None:
    """A boolean mask of the values that fail ``pat`` (as pandera's check would: a value that
    is not text fails, unless the schema coerces it to text; a missing value is skipped unless
    the check sets ``ignore_na: false``), each distinct value evaluated once; None when the
    time budget runs out."""
    import numpy as np
    import pandas as pd

    obj = values.astype(object)
    try:
        codes, uniques = pd.factorize(obj, use_na_sentinel=True)
    except TypeError:  # unhashable values (lists in an object column): one by one
        codes = np.where(obj.isna().to_numpy(), -1, np.arange(len(obj)))
        uniques = obj.to_numpy()
    bad = np.zeros(len(uniques), dtype=bool)
    for i, v in enumerate(uniques):
        text = v if isinstance(v, str) else (str(v) if coerce else None)
        hit = False if text is None else budget.run(pat.compiled, text, pat.search)
        if hit is None:
            return None
        bad[i] = not hit
    na_fails = not bool(getattr(pat.check, "ignore_na", True))
    codes = np.asarray(codes)
    mask = np.where(codes >= 0, bad[np.clip(codes, 0, None)] if len(bad) else False, na_fails)
    return pd.Series(mask.astype(bool), index=values.index)


def _check_patterns(schema: Any, data: pd.DataFrame, *, max_examples: int, hidden: set[str]
                    ) -> tuple[Any, _PatternOutcome]:
    """Resolve and evaluate the patterns of ``schema`` on ``data``, under one time budget:
    the schema pandera is to run (without them) and what they found."""
    import pandas as pd

    outcome = _PatternOutcome()
    patterns = _patterns(schema, "the schema")
    if not patterns:
        return schema, outcome
    budget = _Budget(pattern_timeout())
    run_schema, resolved = _without_patterns(schema, data, budget, outcome)
    for pat in patterns:
        targets: list[tuple[str, str, pd.Series, bool]] = []  # (name, on, values, coerce)
        if pat.where == "column":
            col = schema.columns[pat.column]
            coerce = bool(schema.coerce or getattr(col, "coerce", False))
            for c in resolved.get(pat.column, []):
                if c in data.columns and isinstance(data[c], pd.Series):  # else: pandera
                    targets.append((str(c), f"column {str(c)!r}", data[c], coerce))
        elif pat.where == "index":
            idx = data.index
            lv = _index_levels(schema)[pat.column]
            if idx.nlevels > 1 and pat.column >= idx.nlevels:
                continue  # pandera reports the missing level
            values = pd.Series(idx.get_level_values(pat.column) if idx.nlevels > 1 else idx,
                               index=idx)
            coerce = bool(schema.coerce or getattr(lv, "coerce", False))
            targets.append(("(index)" if lv.name is None else f"(index {lv.name})",
                            "the index", values, coerce))
        for name, on, values, coerce in targets:
            mask = _evaluate(pat, values, coerce, budget)
            if mask is None:
                raise budget.error(pat.label, on)
            if not mask.any() or getattr(pat.check, "raise_warning", False):
                continue
            outcome.bad_index.update(data.index[mask.to_numpy()].tolist())
            examples: tuple[str, ...] = ()
            if name not in hidden:
                seen: list[str] = []
                for v in values[mask.to_numpy()]:
                    t = _text(v)
                    if t not in seen:
                        seen.append(t)
                    if len(seen) >= max_examples:
                        break
                examples = tuple(seen)
            outcome.failures.append(SchemaFailure(name, pat.label, _kind(pat.label),
                                                  int(mask.sum()), examples))
    return run_schema, outcome


# -- validation --------------------------------------------------------------------------------
def _kind(check: str) -> str:
    head = check.split("(", 1)[0]
    return KINDS.get(head, "failed check")


def _text(value: Any, limit: int = 60) -> str:
    try:
        import pandas as pd

        if pd.isna(value):
            return "(missing)"
    except (TypeError, ValueError):  # a list or array: not a single missing value
        pass
    s = str(value)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _without_noop_coercion(schema: Any, data: pd.DataFrame) -> Any:
    """``schema`` coercing only the columns whose dtype differs from the data's.

    pandera coerces a column by copying it, even when it already has the schema's dtype (a
    third of the validation time of a million rows); such a coercion changes nothing, so it is
    left out. Columns of another dtype are still coerced (and their failures reported), and so
    are categoricals, whose dtype name says nothing of their categories.
    """
    if not schema.coerce and not any(c.coerce for c in schema.columns.values()):
        return schema
    updates = {}
    for name, col in schema.columns.items():
        same = (name in data.columns and col.dtype is not None
                and str(col.dtype) == str(data[name].dtype) != "category")
        updates[name] = {"coerce": (schema.coerce or col.coerce) and not same}
    try:
        new = schema.update_columns(updates)
        new.coerce = False
    except Exception:
        return schema
    return new


def validate_schema(data: pd.DataFrame, schema: Any, *, max_examples: int = 5,
                    withhold: Iterable[str] = ()) -> SchemaValidation:
    """Validate ``data`` lazily against ``schema``: every failure, counted, with examples.

    Parameters
    ----------
    data : DataFrame
        The audited data (not modified).
    schema : DataFrameSchema, DataFrameModel class or YAML path
        See :func:`load_schema`.
    max_examples : int
        Distinct failing values kept per (column, check).
    withhold : list of str
        Columns whose failing values are not copied (personal data).

    Returns
    -------
    SchemaValidation

    Examples
    --------
    >>> import pandas as pd
    >>> s = infer_schema(pd.DataFrame({"x": [0, 10]}))
    >>> v = validate_schema(pd.DataFrame({"x": [5, 11, 12, None]}), s)
    >>> [(f.kind, f.count, f.examples) for f in v.failures]
    [('missing values', 1, ('(missing)',)), ('out of range', 2, ('11', '12'))]
    """
    import warnings

    from pandera.errors import SchemaError, SchemaErrors

    schema = load_schema(schema)
    n = int(data.shape[0])
    hidden = set(withhold)
    # the patterns first, under their time budget; pandera validates the rest
    run_schema, pat = _check_patterns(schema, data, max_examples=max_examples, hidden=hidden)
    failures: list[SchemaFailure] = list(pat.failures)
    structural: list[str] = list(pat.structural)
    bad_index: set[Any] = set(pat.bad_index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandera's own FutureWarnings on concat
            _without_noop_coercion(run_schema, data).validate(data, lazy=True)
        fc = None
    except SchemaErrors as exc:
        fc = exc.failure_cases
    except SchemaError as exc:  # a non-lazy failure (e.g. a dataframe-level parser)
        return SchemaValidation(n_rows=n, failing_rows=n, failures=(
            SchemaFailure("(all)", str(getattr(exc, "check", "") or "schema"), "failed check",
                          n), *failures), structural=(str(exc).splitlines()[0], *structural))
    if fc is not None:
        _pandera_failures(fc, failures, structural, bad_index, max_examples=max_examples,
                          hidden=hidden)
    failing = n if structural and any(s.startswith("missing column") for s in structural) \
        else len(bad_index)
    failures.sort(key=lambda f: (f.column, f.kind))
    return SchemaValidation(n_rows=n, failing_rows=int(failing), failures=tuple(failures),
                            structural=tuple(structural))


def _pandera_failures(fc: pd.DataFrame, failures: list[SchemaFailure], structural: list[str],
                      bad_index: set[Any], *, max_examples: int, hidden: set[str]) -> None:
    """Add the failure cases of pandera's lazy validation to ``failures`` (one per column and
    check), ``structural`` and the failing rows ``bad_index``."""
    import pandas as pd

    fc = fc.assign(column=fc["column"].astype(object).where(fc["column"].notna(), None))
    # a column whose values could not be converted: its dtype and value checks are consequences
    coerced = {str(c) for c, chk in zip(fc["column"], fc["check"], strict=True)
               if str(chk).startswith("coerce_dtype")}
    for (column, check), part in fc.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        if check == "column_in_dataframe" or column is None or pd.isna(column):
            cols = ", ".join(sorted({str(v) for v in part["failure_case"]}))
            kind = _kind(check)
            failures.append(SchemaFailure(cols if check == "column_in_dataframe" else "(all)",
                                          check, kind, len(part)))
            structural.append(f"{kind}: {cols}")
            continue
        column = str(column)
        idx = part["index"]
        if idx.isna().all():  # the check itself could not run on the column
            if column in coerced:
                continue
            failures.append(SchemaFailure(column, check, "check could not run", 0,
                                          (_text(part["failure_case"].iloc[0], 120),)))
            structural.append(f"{check} on {column!r} could not run")
            continue
        if column in coerced and check.startswith("dtype("):
            continue
        bad_index.update(idx.dropna().tolist())
        examples: tuple[str, ...] = ()
        if column not in hidden:
            seen: list[str] = []
            for v in part["failure_case"]:
                t = _text(v)
                if t not in seen:
                    seen.append(t)
                if len(seen) >= max_examples:
                    break
            examples = tuple(seen)
        failures.append(SchemaFailure(column, check, _kind(check), int(idx.notna().sum()),
                                      examples))
