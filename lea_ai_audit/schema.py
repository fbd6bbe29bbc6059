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

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._io import safe_yaml
from .errors import DataError, InputError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SchemaFailure", "SchemaValidation", "infer_schema", "load_schema",
           "schema_from_yaml", "schema_to_yaml", "validate_schema"]

#: a text column with at most this many distinct values gets an allowed-categories check
MAX_CATEGORIES = 50
#: failure kinds, in the words of the report
KINDS = {"column_in_dataframe": "missing column", "not_nullable": "missing values",
         "coerce_dtype": "wrong type", "dtype": "wrong type", "isin": "unknown category",
         "in_range": "out of range", "greater_than_or_equal_to": "out of range",
         "less_than_or_equal_to": "out of range", "field_uniqueness": "duplicates",
         "column_name_regex": "missing column"}


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
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{where} is not valid YAML: {first}",
                         "write it with pandera (schema.to_yaml()) or fix the syntax") from None
    if not isinstance(data, dict) or not isinstance(data.get("columns"), (dict, list)):
        raise InputError(f"{where} is not a pandera DataFrameSchema (no columns: mapping)",
                         "write it with pandera's DataFrameSchema.to_yaml()")
    from pandera.io import pandas_io

    try:
        return pandas_io.deserialize_schema(data)
    except Exception as exc:
        raise InputError(f"{where} is not a valid pandera schema: {type(exc).__name__}: {exc}",
                         "write it with pandera's DataFrameSchema.to_yaml()") from None


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
        return source
    if isinstance(source, type) and issubclass(source, pa.DataFrameModel):
        return source.to_schema()
    if isinstance(source, (str, os.PathLike)):
        return schema_from_yaml(source)
    raise InputError(f"schema must be a pandera DataFrameSchema, a DataFrameModel class or the "
                     f"path of a YAML file, got {type(source).__name__}",
                     "pass e.g. schema='schema.yaml' (--schema FILE)")


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

    import pandas as pd
    from pandera.errors import SchemaError, SchemaErrors

    schema = load_schema(schema)
    n = int(data.shape[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandera's own FutureWarnings on concat
            _without_noop_coercion(schema, data).validate(data, lazy=True)
        return SchemaValidation(n_rows=n, failing_rows=0)
    except SchemaErrors as exc:
        fc = exc.failure_cases
    except SchemaError as exc:  # a non-lazy failure (e.g. a dataframe-level parser)
        return SchemaValidation(n_rows=n, failing_rows=n, failures=(
            SchemaFailure("(all)", str(getattr(exc, "check", "") or "schema"), "failed check",
                          n),), structural=(str(exc).splitlines()[0],))
    hidden = set(withhold)
    failures: list[SchemaFailure] = []
    structural: list[str] = []
    bad_index: set[Any] = set()
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
    failing = n if structural and any(s.startswith("missing column") for s in structural) \
        else len(bad_index)
    failures.sort(key=lambda f: (f.column, f.kind))
    return SchemaValidation(n_rows=n, failing_rows=int(failing), failures=tuple(failures),
                            structural=tuple(structural))
