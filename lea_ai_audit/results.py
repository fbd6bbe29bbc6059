"""Results of an audit: Status, Evidence, CheckResult and AuditReport.

The report is the single source of truth: a model card, an MLflow run or a JUnit file is a
rendering of it, and re-rendering needs neither the model nor the data. It is immutable,
serialises to versioned JSON (``schema_version``) and round-trips exactly:
``AuditReport.from_json(r.to_json()) == r``.

Examples
--------
>>> from lea_ai_audit.results import CheckResult, Status
>>> r = CheckResult(check_id="fairness.disparity", requirement_id="fpr-parity",
...                 status=Status.PASS, message="FPR within 0.10 of the reference group")
>>> r.status.passed
True
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import Enum, StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from ._io import atomic_write_bytes, atomic_write_text, sha256_bytes, strict_json
from .errors import ReportError

__all__ = ["SCHEMA_VERSION", "AuditReport", "CheckResult", "Evidence", "Status", "overall_status"]

#: Version of the report's JSON layout. Readers accept every ``1.x``.
SCHEMA_VERSION = "1.0"
REPORT_FILE = "report.json"


class Status(StrEnum):
    """Outcome of one requirement, and of a whole audit.

    ``PASS`` the requirement is met; ``WARN`` not met but non-blocking, or too little evidence
    to decide; ``FAIL`` a blocking requirement is not met; ``ERROR`` the check could not run
    (the reason is in the message); ``SKIPPED`` the check does not apply (e.g. no scores).
    """

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def passed(self) -> bool:
        """True for PASS and WARN: what lets the gate open."""
        return self in (Status.PASS, Status.WARN)


def _jsonable(value: Any) -> Any:
    """Plain JSON types: numpy scalars to Python, NaN/inf to None, tuples to lists."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    # numpy scalars and arrays, without importing numpy here
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, shortened."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def safe_filename(name: str) -> str:
    """``name`` reduced to letters, digits, ``.``, ``_`` and ``-`` (no path separators)."""
    cleaned = _SAFE_NAME.sub("_", str(name)).strip("._") or "file"
    return cleaned[:120]


@dataclass(frozen=True)
class Evidence:
    """A piece of evidence behind a result.

    ``kind`` is ``"table"`` (``data = {"columns": [...], "rows": [[...], ...]}``), ``"text"``,
    ``"json"`` or ``"file"``. A file's ``data`` is ``{"path", "sha256", "media_type", "size"}``
    with ``path`` relative to the report's directory (``evidence/<requirement>/<name>``); its
    bytes travel in ``content`` (not part of the JSON) until :meth:`AuditReport.save` writes
    them beside report.json. The digest in ``data`` makes a signed report cover its files.
    """

    name: str
    kind: str
    data: Any
    description: str = ""
    content: bytes | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", _jsonable(self.data))

    @classmethod
    def table(cls, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
              description: str = "") -> Evidence:
        """A table of ``rows`` under ``columns``."""
        return cls(name, "table", {"columns": list(columns), "rows": [list(r) for r in rows]},
                   description)

    @classmethod
    def file(cls, name: str, filename: str, content: bytes | str, description: str = "", *,
             media_type: str = "application/octet-stream") -> Evidence:
        """A file (a plot, a schema, an HTML report) saved with the report.

        Examples
        --------
        >>> e = Evidence.file("plot", "importance.png", b"PNG...", media_type="image/png")
        >>> e.data["path"], e.data["size"]
        ('importance.png', 6)
        """
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        data = {"path": safe_filename(filename), "sha256": sha256_bytes(raw),
                "media_type": media_type, "size": len(raw)}
        return cls(name, "file", data, description, content=raw)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (a file's bytes are not part of it)."""
        return {"name": self.name, "kind": self.kind, "data": self.data,
                "description": self.description}

    def read(self, base: str | os.PathLike[str] | None = None) -> bytes:
        """The bytes of a file evidence: from memory, or from ``base`` (the report's directory).

        Raises ``ReportError`` if the file is missing, lies outside ``base`` or does not match
        its recorded SHA-256 (it was changed after the audit).
        """
        if self.kind != "file":
            raise ReportError(f"evidence {self.name!r} is a {self.kind}, not a file",
                              "read its data instead")
        if self.content is not None:
            return self.content
        if base is None:
            raise ReportError(f"the file of evidence {self.name!r} is not in memory",
                              "pass the report's directory")
        root = Path(base).resolve()
        rel = str(self.data.get("path", "")) if isinstance(self.data, Mapping) else ""
        try:
            path = (root / rel).resolve()
        except (OSError, ValueError):  # a NUL byte, a loop of links
            path = root
        if root not in path.parents:
            raise ReportError(f"evidence {self.name!r} points outside the report directory",
                              "use the report.json written by lea-audit, unedited")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ReportError(f"evidence file {str(path)!r} cannot be read: "
                              f"{exc.strerror or exc}", "keep the evidence/ folder beside "
                              "report.json") from exc
        if sha256_bytes(raw) != self.data.get("sha256"):
            raise ReportError(f"evidence file {str(path)!r} does not match its digest in the "
                              "report", "it was changed after the audit; re-run the audit")
        return raw


@dataclass(frozen=True)
class CheckResult:
    """The result of one requirement's check.

    ``status`` is what counts (a non-blocking FAIL is reported as WARN); ``raw_status`` is what
    the check itself found. ``metrics`` is flat (name -> number or None when undefined).
    """

    check_id: str
    requirement_id: str
    status: Status
    message: str
    metrics: Mapping[str, float | int | None] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    title: str = ""
    clauses: tuple[str, ...] = ()
    blocking: bool = True
    raw_status: Status | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "raw_status", Status(self.raw_status or self.status))
        object.__setattr__(self, "metrics", _jsonable(dict(self.metrics)))
        object.__setattr__(self, "params", _jsonable(dict(self.params)))
        object.__setattr__(self, "clauses", tuple(self.clauses))
        object.__setattr__(self, "evidence", tuple(
            e if isinstance(e, Evidence) else Evidence(**e) for e in self.evidence))
        object.__setattr__(self, "duration_s", round(float(self.duration_s), 6))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "evidence"}
        d = _jsonable(d)
        d["evidence"] = [e.to_dict() for e in self.evidence]
        return d

    def files(self) -> list[Evidence]:
        """The file evidence of this result."""
        return [e for e in self.evidence if e.kind == "file"]

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def evidence_named(self, name: str) -> Evidence:
        """The evidence called ``name`` (``KeyError`` if absent)."""
        for e in self.evidence:
            if e.name == name:
                return e
        raise KeyError(name)


def overall_status(results: Iterable[CheckResult]) -> Status:
    """The audit's status from its results.

    FAIL if a blocking requirement failed; else ERROR if a blocking check could not run; else
    WARN if anything warned or a non-blocking check errored; else PASS; SKIPPED if nothing ran.
    """
    statuses = [(r.status, r.blocking) for r in results]
    if any(s is Status.FAIL for s, _ in statuses):
        return Status.FAIL
    if any(s is Status.ERROR and b for s, b in statuses):
        return Status.ERROR
    if any(s in (Status.WARN, Status.ERROR) for s, _ in statuses):
        return Status.WARN
    if any(s is Status.PASS for s, _ in statuses):
        return Status.PASS
    return Status.SKIPPED


# -- reading a report.json from outside: every field's type, before any is used -------------
#: the largest whole number a report holds (counts, sizes, seeds): beyond it, a number is
#: corrupt or crafted (and could not be a float for the renderings' arithmetic)
MAX_REPORT_INT = 2**63 - 1
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FIX = "re-run the audit to write a fresh report.json (never edit it by hand)"


def _shown(value: Any, limit: int = 60) -> str:
    """``repr(value)``, shortened (a crafted file may hold a megabyte in one string)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _kind(value: Any) -> str:
    """The JSON type of ``value``, in words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


class _Reader:
    """Checks the parsed JSON of a report against the layout :meth:`AuditReport.to_dict`
    writes; the first mismatch is a :class:`ReportError` naming the file and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> ReportError:
        return ReportError(f"{self.source} is malformed: {where} {problem}", _FIX)

    def values(self, value: Any, where: str) -> None:
        """Every number finite and of sane size, every string (and key) valid Unicode."""
        stack = [(value, where)]
        while stack:
            v, w = stack.pop()
            if isinstance(v, str):
                try:
                    v.encode("utf-8")
                except UnicodeEncodeError:
                    raise self.fail(w, "holds a character that is not Unicode (an unpaired "
                                       "surrogate escape)") from None
            elif isinstance(v, bool) or v is None:
                continue
            elif isinstance(v, int):
                if abs(v) > MAX_REPORT_INT:
                    raise self.fail(w, f"is a whole number of {len(str(abs(v)))} digits, "
                                       f"larger than any a report holds (at most "
                                       f"{MAX_REPORT_INT})")
            elif isinstance(v, float):
                if not math.isfinite(v):
                    raise self.fail(w, "is a number too large for a float (it reads as "
                                       "infinity)")
            elif isinstance(v, list):
                stack.extend((x, f"{w}[{i}]") for i, x in enumerate(v))
            elif isinstance(v, Mapping):
                for k, x in v.items():
                    plain = isinstance(k, str) and len(k) <= 60 and _IDENT.fullmatch(k)
                    name = (f"{w}.{k}" if w else str(k)) if plain else f"{w}[{_shown(k)}]"
                    stack.append((k, f"a key of {w or 'the report'}"))
                    stack.append((x, name))

    def want(self, value: Any, where: str, *types: str) -> Any:
        """``value`` if it is one of ``types`` (``str``, ``int``, ``number``, ``bool``,
        ``list``, ``object``, ``null``), else a ReportError."""
        ok = {
            "str": isinstance(value, str),
            "int": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "list": isinstance(value, list),
            "object": isinstance(value, Mapping),
            "null": value is None,
        }
        if not any(ok[t] for t in types):
            words = {"str": "a string", "int": "a whole number", "number": "a number",
                     "bool": "true or false", "list": "a list", "object": "an object",
                     "null": "null"}
            names = [words[t] for t in types]
            either = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
            raise self.fail(where, f"is {_kind(value)}, not {either}")
        return value

    def fields(self, d: Mapping[str, Any], where: str, spec: Mapping[str, tuple[str, ...]]
               ) -> None:
        for key, types in spec.items():
            if key in d:
                self.want(d[key], f"{where}.{key}" if where else key, *types)

    def status(self, value: Any, where: str, *, nullable: bool = False) -> None:
        if nullable and value is None:
            return
        if not isinstance(value, str) or value not in {s.value for s in Status}:
            raise self.fail(where, f"is {_shown(value)}, not one of "
                                   f"{', '.join(s.value for s in Status)}")

    def strings(self, value: Any, where: str, *, nullable: bool = True,
                items: tuple[str, ...] = ("str",)) -> None:
        self.want(value, where, "list", *(("null",) if nullable else ()))
        for i, x in enumerate(value or []):
            self.want(x, f"{where}[{i}]", *items)

    def report(self, d: Mapping[str, Any]) -> None:
        self.values(d, "")
        self.want(d["checks"], "checks", "list")
        self.fields(d, "", {"schema_version": ("str",), "report_id": ("str",),
                            "created_at": ("str",), "author": ("str", "null"),
                            "seed": ("int", "null"), "duration_s": ("number",),
                            "policy": ("object",), "subject": ("object",),
                            "data": ("object",), "environment": ("object",)})
        if "status" in d:
            self.status(d["status"], "status")
        pol = d.get("policy") or {}
        self.fields(pol, "policy", {"id": ("str", "null"), "version": ("str", "null"),
                                    "title": ("str", "null"), "sha256": ("str", "null"),
                                    "source": ("str", "null"), "path": ("str", "null"),
                                    "settings": ("object", "null"),
                                    "signoff": ("object", "null")})
        rule = pol.get("signoff") or {}
        self.fields(rule, "policy.signoff", {"min_approvals": ("int", "null"),
                                             "author_may_approve": ("bool", "null"),
                                             "max_age_days": ("number", "null")})
        if "required_roles" in rule:
            self.strings(rule["required_roles"], "policy.signoff.required_roles")
        if isinstance(rule.get("min_approvals"), int) and rule["min_approvals"] < 0:
            raise self.fail("policy.signoff.min_approvals", "is negative")
        sub = d.get("subject") or {}
        self.fields(sub, "subject", {"target": ("str", "null"), "model": ("object", "null"),
                                     "reference_groups": ("object", "null"),
                                     "metadata": ("object", "null"),
                                     "prediction_source": ("str", "null"),
                                     "decision_rule": ("str", "null"),
                                     "threshold": ("number", "null")})
        if "sensitive" in sub:
            self.strings(sub["sensitive"], "subject.sensitive")
        if "features" in sub:  # a model's feature names may be numbers
            self.strings(sub["features"], "subject.features", items=("str", "number"))
        for k, v in (sub.get("reference_groups") or {}).items():
            self.want(v, f"subject.reference_groups[{_shown(k)}]", "object", "null")
        self.fields(sub.get("model") or {}, "subject.model", {
            "file_sha256": ("str", "null"), "class": ("str", "null"),
            "params_sha256": ("str", "null")})
        self.fields(d.get("data") or {}, "data", {
            "sha256": ("str", "null"), "n_rows": ("int", "null"), "n_columns": ("int", "null"),
            "positives": ("int", "null"), "predicted_positive": ("int", "null"),
            "source": ("object", "null"), "reference": ("object", "null")})
        env = d.get("environment") or {}
        self.fields(env, "environment", {"python": ("str", "null"),
                                         "libraries": ("object", "null")})
        for i, c in enumerate(d["checks"]):
            self.check(c, f"checks[{i}]")

    def check(self, c: Any, where: str) -> None:
        self.want(c, where, "object")
        rid = c.get("requirement_id")
        if isinstance(rid, str):
            where = f"{where} ({rid[:40]})"
        for key in ("check_id", "requirement_id", "status", "message"):
            if key not in c:
                raise self.fail(where, f"has no {key!r}")
        self.fields(c, where, {"check_id": ("str",), "requirement_id": ("str",),
                               "message": ("str",), "title": ("str",),
                               "metrics": ("object",), "evidence": ("list",),
                               "blocking": ("bool",), "params": ("object",),
                               "duration_s": ("number",)})
        self.status(c["status"], f"{where}.status")
        self.status(c.get("raw_status"), f"{where}.raw_status", nullable=True)
        if "clauses" in c:
            self.strings(c["clauses"], f"{where}.clauses", nullable=False)
        for k, v in (c.get("metrics") or {}).items():
            self.want(v, f"{where}.metrics[{_shown(k)}]", "number", "bool", "null")
        for j, e in enumerate(c.get("evidence") or []):
            self.evidence(e, f"{where}.evidence[{j}]")

    def evidence(self, e: Any, where: str) -> None:
        self.want(e, where, "object")
        for key in ("name", "kind"):
            if key not in e:
                raise self.fail(where, f"has no {key!r}")
        self.fields(e, where, {"name": ("str",), "kind": ("str",),
                               "description": ("str", "null")})
        data = e.get("data")
        if e["kind"] == "table":
            self.want(data, f"{where}.data", "object")
            cols = data.get("columns")
            self.strings(cols, f"{where}.data.columns", nullable=False,
                         items=("str", "number", "bool", "null"))
            rows = self.want(data.get("rows"), f"{where}.data.rows", "list")
            for r, row in enumerate(rows):
                self.want(row, f"{where}.data.rows[{r}]", "list")
                if len(row) != len(cols):
                    raise self.fail(f"{where}.data.rows[{r}]",
                                    f"has {len(row)} value(s) for {len(cols)} column(s)")
        elif e["kind"] == "file":
            self.want(data, f"{where}.data", "object")
            for key in ("path", "sha256"):
                self.want(data.get(key), f"{where}.data.{key}", "str")
            path = data["path"]
            if "\x00" in path or "\\" in path or PurePosixPath(path).is_absolute() \
                    or ".." in PurePosixPath(path).parts:
                raise self.fail(f"{where}.data.path", f"{_shown(path)} is not a path inside the "
                                                      "report's folder")
            self.fields(data, f"{where}.data", {"media_type": ("str",), "size": ("int",)})
        elif e["kind"] == "text":
            self.want(data, f"{where}.data", "str", "null")


@dataclass(frozen=True)
class AuditReport:
    """An immutable, versioned audit report.

    Attributes
    ----------
    checks : tuple of CheckResult
        One result per requirement of the policy that ran, in policy order.
    status : Status
        The overall status (see :func:`overall_status`).
    subject : dict
        What was audited: target, sensitive attributes, prediction source, model, features.
    data : dict
        Digests and shape of the audited (and reference) data.
    policy : dict
        Id, version and title of the policy pack.
    environment : dict
        Python and library versions.

    Examples
    --------
    >>> rep = AuditReport(checks=())  # doctest: +SKIP
    >>> AuditReport.from_json(rep.to_json()) == rep  # doctest: +SKIP
    True
    """

    checks: tuple[CheckResult, ...]
    status: Status = Status.SKIPPED
    schema_version: str = SCHEMA_VERSION
    report_id: str = ""
    created_at: str = ""
    author: str | None = None
    seed: int | None = None
    policy: Mapping[str, Any] = field(default_factory=dict)
    subject: Mapping[str, Any] = field(default_factory=dict)
    data: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        checks = tuple(c if isinstance(c, CheckResult) else CheckResult.from_dict(c)
                       for c in self.checks)
        object.__setattr__(self, "checks", checks)
        object.__setattr__(self, "status", Status(self.status))
        for name in ("policy", "subject", "data", "environment"):
            object.__setattr__(self, name, _jsonable(dict(getattr(self, name))))
        object.__setattr__(self, "duration_s", round(float(self.duration_s), 6))

    # -- access ------------------------------------------------------------------------------
    @property
    def passed(self) -> bool:
        """True when the gate would open on the audit alone (PASS or WARN)."""
        return self.status.passed

    def result(self, requirement_id: str) -> CheckResult:
        """The result of requirement ``requirement_id``."""
        for c in self.checks:
            if c.requirement_id == requirement_id:
                return c
        known = ", ".join(c.requirement_id for c in self.checks)
        raise KeyError(f"no requirement {requirement_id!r} in this report (have: {known})")

    def by_status(self, status: Status | str) -> list[CheckResult]:
        """Results whose (effective) status is ``status``."""
        st = Status(status)
        return [c for c in self.checks if c.status is st]

    def counts(self) -> dict[str, int]:
        """How many results have each status."""
        return {s.value: len(self.by_status(s)) for s in Status}

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict (NaN written as null)."""
        d = _jsonable({f.name: getattr(self, f.name) for f in fields(self) if f.name != "checks"})
        d["checks"] = [c.to_dict() for c in self.checks]
        return {"checks": d.pop("checks"), **d}

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON text (UTF-8, keys in a stable order)."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, allow_nan=False)

    def digest(self) -> str:
        """SHA-256 of the canonical JSON (sorted keys, no spaces): what a sign-off signs."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False, allow_nan=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str = REPORT_FILE) -> AuditReport:
        """Inverse of :meth:`to_dict`; refuses an unknown major schema version and any field
        of the wrong type (``source``, the file's name, is in the message)."""
        if not isinstance(d, Mapping) or "checks" not in d:
            raise ReportError(f"{source} is not an lea-ai-audit report (no 'checks')",
                              "pass the report.json written by `lea-audit run` or audit().save()")
        version = d.get("schema_version", "")
        if not isinstance(version, str):
            raise ReportError(f"{source} is malformed: schema_version is {_kind(version)}, "
                              f"not a string such as {SCHEMA_VERSION!r}", _FIX)
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ReportError(
                f"{source}: report schema_version {_shown(version)} is not supported (this "
                f"lea-ai-audit reads {SCHEMA_VERSION.split('.')[0]}.x)",
                "re-run the audit with this version, or install the version that wrote it")
        _Reader(source).report(d)
        known = {f.name for f in fields(cls)}
        args = {k: v for k, v in d.items() if k in known}
        # a file's bytes never come from the JSON (Evidence.read would trust them unchecked)
        args["checks"] = [{**c, "evidence": [
            {k: v for k, v in e.items() if k in ("name", "kind", "data", "description")}
            for e in c.get("evidence") or []]} for c in d["checks"]]
        try:
            return cls(**args)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            raise ReportError(f"{source} is malformed: {type(exc).__name__}: "
                              f"{_one_line(exc)}", _FIX) from exc

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = REPORT_FILE) -> AuditReport:
        """Parse a report from JSON text (``source`` names the file in errors)."""
        try:
            d = strict_json(text)
        except ValueError as exc:  # bad JSON, not UTF-8, a number beyond int's digit limit
            raise ReportError(f"{source} is not valid JSON ({_one_line(exc)})",
                              "pass the report.json written by `lea-audit run`") from exc
        return cls.from_dict(d, source=source)

    def table(self, name: str) -> list[dict[str, Any]]:
        """The rows of the first table evidence called ``name``, as dicts (column -> value).

        ``pandas.DataFrame(report.table("group_metrics:race"))`` gives a frame in a notebook.

        Examples
        --------
        >>> rows = report.table("group_metrics:ethnicity")  # doctest: +SKIP
        >>> [r for r in rows if r["metric"] == "fpr"][0]["ci_low"]  # doctest: +SKIP
        """
        for c in self.checks:
            for e in c.evidence:
                if e.name == name and e.kind == "table":
                    cols = e.data["columns"]
                    return [dict(zip(cols, row, strict=True)) for row in e.data["rows"]]
        names = sorted({e.name for c in self.checks for e in c.evidence if e.kind == "table"})
        raise KeyError(f"no table evidence {name!r} in this report (have: {', '.join(names)})")

    def files(self) -> list[Evidence]:
        """Every file evidence of the report (plots, schema, drift report), in check order."""
        return [e for c in self.checks for e in c.files()]

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``report.json`` and its evidence files into ``directory``, atomically.

        Evidence files go first, each atomically, into the report's own folder under
        ``evidence/`` (so they never overwrite the files of the report already there);
        report.json is replaced last, in one step. A reader sees the old report with its files
        or the new one with its files, never a mix; if the save fails, the old report is intact.
        Afterwards the evidence folders of replaced reports are removed. Returns report.json's
        path.
        """
        base = Path(directory)
        for e in self.files():
            if e.content is not None:
                atomic_write_bytes(base / e.data["path"], e.content)
        path = atomic_write_text(base / REPORT_FILE, self.to_json() + "\n")
        self._remove_stale_evidence(base)
        return path

    def _remove_stale_evidence(self, base: Path) -> None:
        """Delete evidence folders that no longer belong to the report in ``base``."""
        import shutil

        keep = {PurePosixPath(str(e.data.get("path", ""))).parts[:2] for e in self.files()}
        root = base / "evidence"
        if not root.is_dir():
            return
        for child in root.iterdir():
            # only folders named like a report id prefix, as lea-ai-audit writes them
            if (child.is_dir() and ("evidence", child.name) not in keep
                    and re.fullmatch(r"[0-9a-f]{12}", child.name)):
                shutil.rmtree(child, ignore_errors=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AuditReport:
        """Read a report from a ``report.json`` file or a directory holding one."""
        p = Path(path)
        if p.is_dir():
            p = p / REPORT_FILE
        try:
            text = p.read_bytes()
        except FileNotFoundError:
            raise ReportError(f"no report at {str(p)!r}",
                              "pass the report.json written by `lea-audit run --out DIR`") from None
        except OSError as exc:
            raise ReportError(f"cannot read {str(p)!r}: {exc.strerror or exc}",
                              "check the path and its permissions") from exc
        return cls.from_json(text, source=str(p))

    def with_checks(self, checks: Iterable[CheckResult]) -> AuditReport:
        """A copy with other results and the overall status recomputed."""
        checks = tuple(checks)
        return replace(self, checks=checks, status=overall_status(checks))

    # -- display -----------------------------------------------------------------------------
    def summary_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(requirement, clauses, blocking, status, message) per result."""
        return [(c.requirement_id, "; ".join(c.clauses), "yes" if c.blocking else "no",
                 c.status.value.upper(), c.message) for c in self.checks]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.counts().items() if v)
        return (f"<AuditReport {self.status.value.upper()} policy={self.policy.get('id')!r} "
                f"rows={self.data.get('n_rows')} ({counts})>")

    def _repr_html_(self) -> str:
        """A table for notebooks; every value is HTML-escaped."""
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(r)}</td><td>{esc(cl)}</td><td>{esc(b)}</td>"
            f"<td><b>{esc(s)}</b></td><td>{esc(m)}</td></tr>"
            for r, cl, b, s, m in self.summary_rows())
        return (f"<p><b>Audit {esc(self.status.value.upper())}</b> — policy "
                f"{esc(str(self.policy.get('id')))}, {esc(str(self.data.get('n_rows')))} rows</p>"
                "<table><thead><tr><th>requirement</th><th>clauses</th><th>blocking</th>"
                f"<th>status</th><th>finding</th></tr></thead><tbody>{rows}</tbody></table>")
