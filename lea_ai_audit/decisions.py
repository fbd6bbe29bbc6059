"""A human decision on every outcome (Council 13083/1/20 §27: "the outcome must be submitted
to a human decision"; AI Act Art. 14).

:class:`OverseenModel` wraps a model so that it only *recommends*: :meth:`~OverseenModel.recommend`
scores cases, explains each score in plain words and records the recommendation;
:meth:`~DecisionLog.decide` records what the officer decided. There is no final outcome without
a decision: :meth:`DecisionLog.outcomes` holds decided cases only, :meth:`DecisionLog.pending`
the rest, and :meth:`DecisionLog.outcome` refuses a case that is still pending.

Records are never updated in place: the log has two append-only tables,
``lea_recommendations`` and ``lea_decisions`` (one decision per case, enforced by a unique
constraint, so two officers deciding the same case at once cannot both succeed). On SQLite,
triggers refuse any UPDATE or DELETE.

Where the log lives
-------------------
:class:`DecisionLog` takes an SQLAlchemy URL. By default a local SQLite file
(``$LEA_AUDIT_DECISIONS``, else ``decisions.db`` in the working directory): right for one
workstation or a pilot. A force with many officers uses PostgreSQL, e.g.
``DecisionLog("postgresql+psycopg://audit@db.internal/oversight")`` (install a driver such as
``psycopg``); the tables are created on first use. Let the officers' database role only
``INSERT`` and ``SELECT``, so the database itself keeps the log append-only::

    REVOKE UPDATE, DELETE, TRUNCATE ON lea_recommendations, lea_decisions FROM officers;
    GRANT SELECT, INSERT ON lea_recommendations, lea_decisions TO officers;
    GRANT USAGE ON SEQUENCE lea_recommendations_id_seq, lea_decisions_id_seq TO officers;

Times are stored in UTC.

Examples
--------
>>> from lea_ai_audit.decisions import DecisionLog, OverseenModel     # doctest: +SKIP
>>> om = OverseenModel(model, log=DecisionLog("sqlite:///decisions.db"),
...                    model_id="triage-v3", background=train[FEATURES],
...                    groups=["ethnicity", "sex"])                   # doctest: +SKIP
>>> recs = om.recommend(cases, case_ids="case_id")                    # doctest: +SKIP
>>> recs[0].reasons[0]["text"]                                        # doctest: +SKIP
'prior_contacts = 7 raised the risk score by 0.18'
>>> d = om.decide(recs[0].case_id, officer="PC 4711", decision="override", outcome=0,
...               reason="the prior contacts were as a witness")  # doctest: +SKIP
>>> len(om.log.pending()), len(om.log.outcomes())                     # doctest: +SKIP
(99, 1)
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = [
    "DECISIONS",
    "AlreadyDecidedError",
    "AlreadyRecommendedError",
    "Decision",
    "DecisionError",
    "DecisionLog",
    "NotDecidedError",
    "OverseenModel",
    "Recommendation",
    "UnknownCaseError",
]

DECISIONS = ("accept", "override")
DECISIONS_ENV = "LEA_AUDIT_DECISIONS"
DEFAULT_FILE = "decisions.db"
RECOMMENDATIONS_TABLE = "lea_recommendations"
DECISIONS_TABLE = "lea_decisions"


class DecisionError(InputError):
    """A decision or recommendation the log refuses (the message says why and what to do)."""


class UnknownCaseError(DecisionError):
    """No recommendation was recorded for the case."""


class AlreadyDecidedError(DecisionError):
    """The case already has a decision: decisions are never changed or replaced."""


class AlreadyRecommendedError(DecisionError):
    """The case already has a recommendation."""


class NotDecidedError(DecisionError):
    """The case has no decision yet: there is no final outcome."""


# -- values --------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars to Python, NaN to None."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (int, str, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Outcome equality across JSON round trips (1 == 1.0 == True is not assumed for strings)."""
    a, b = _plain(a), _plain(b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _utc(when: datetime | None) -> datetime:
    w = when or datetime.now(UTC)
    if w.tzinfo is None:
        w = w.replace(tzinfo=UTC)
    return w.astimezone(UTC)


def _naive(when: datetime) -> datetime:
    return _utc(when).replace(tzinfo=None)


def _aware(when: Any) -> datetime | None:
    if when is None:
        return None
    if isinstance(when, str):
        when = datetime.fromisoformat(when)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Recommendation:
    """What the model recommended for one case, and why.

    ``reasons`` are dicts with ``feature``, ``value``, ``contribution`` and ``text`` (from
    :func:`lea_ai_audit.explain.explain_cases`); ``groups`` the case's sensitive attributes as
    recorded; ``note`` says why reasons are missing, if they are.
    """

    case_id: str
    model_id: str
    score: float | None
    label: Any
    reasons: tuple[Mapping[str, Any], ...] = ()
    groups: Mapping[str, Any] = field(default_factory=dict)
    recommended_at: datetime | None = None
    note: str = ""


@dataclass(frozen=True)
class Decision:
    """What the officer decided on one case."""

    case_id: str
    officer: str
    decision: str
    outcome: Any
    reason: str | None
    decided_at: datetime
    recommended_label: Any = None
    seconds_to_decision: float | None = None


# -- the log -------------------------------------------------------------------------------------
_TABLES: dict[str, Any] = {}


def _tables() -> tuple[Any, Any, Any]:
    if not _TABLES:
        import sqlalchemy as sa

        md = sa.MetaData()
        recs = sa.Table(
            RECOMMENDATIONS_TABLE, md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("case_id", sa.String(200), nullable=False, unique=True),
            sa.Column("model_id", sa.String(200), nullable=False, index=True),
            sa.Column("score", sa.Float, nullable=True),
            sa.Column("label", sa.Text, nullable=False),  # JSON
            sa.Column("reasons", sa.Text, nullable=False),  # JSON list
            sa.Column("groups", sa.Text, nullable=False),  # JSON mapping
            sa.Column("note", sa.Text, nullable=True),
            sa.Column("recommended_at", sa.DateTime, nullable=False),  # UTC
        )
        decs = sa.Table(
            DECISIONS_TABLE, md,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("case_id", sa.String(200), sa.ForeignKey(f"{RECOMMENDATIONS_TABLE}.case_id"),
                      nullable=False, unique=True),
            sa.Column("officer", sa.String(200), nullable=False, index=True),
            sa.Column("decision", sa.String(16), nullable=False),
            sa.Column("outcome", sa.Text, nullable=False),  # JSON
            sa.Column("reason", sa.Text, nullable=True),
            sa.Column("decided_at", sa.DateTime, nullable=False),  # UTC
            sa.CheckConstraint("decision IN ('accept', 'override')", name="lea_decision_kind"),
            sa.CheckConstraint("decision = 'accept' OR (reason IS NOT NULL AND reason <> '')",
                               name="lea_override_reason"),
        )
        _TABLES.update(md=md, recs=recs, decs=decs)
    return _TABLES["md"], _TABLES["recs"], _TABLES["decs"]


def _resolve_url(url: str | os.PathLike[str] | None) -> tuple[str, Path | None]:
    """(SQLAlchemy URL, sqlite file or None)."""
    text = str(url) if url is not None else os.environ.get(DECISIONS_ENV) or DEFAULT_FILE
    if "://" not in text:  # a plain path: a sqlite file
        path = Path(text).expanduser().resolve()
        return f"sqlite:///{path}", path
    if text.startswith("sqlite:///") and text not in ("sqlite:///", "sqlite:///:memory:"):
        return text, Path(text[len("sqlite:///"):]).expanduser()
    return text, None


_SQLITE_APPEND_ONLY = [
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} BEGIN "
    f"SELECT RAISE(ABORT, 'the decision log is append-only: records are never changed'); END"
    for t in (RECOMMENDATIONS_TABLE, DECISIONS_TABLE) for op in ("UPDATE", "DELETE")
]


class DecisionLog:
    """The append-only log of recommendations and officers' decisions.

    Parameters
    ----------
    url : str or path, optional
        An SQLAlchemy URL (``sqlite:///decisions.db``, ``postgresql+psycopg://...``) or a file
        path (SQLite). Default ``$LEA_AUDIT_DECISIONS``, else ``decisions.db`` in the working
        directory.
    create : bool
        Create the file and tables if missing (default). ``False`` to open an existing log
        only (what an audit of the log does): a missing log is an error, not an empty one.

    Raises
    ------
    lea_ai_audit.errors.InputError
        A malformed URL, a database that cannot be reached, or (``create=False``) no log there.

    Examples
    --------
    >>> log = DecisionLog("sqlite:///decisions.db")                    # doctest: +SKIP
    >>> log.counts()                                                   # doctest: +SKIP
    {'recommended': 0, 'decided': 0, 'pending': 0}
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, create: bool = True
                 ) -> None:
        import sqlalchemy as sa
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

        self.url, self._file = _resolve_url(url)
        if self._file is not None and not create and not self._file.is_file():
            raise InputError(f"no decision log at {str(self._file)!r}",
                             "pass the URL or file of the log the officers' decisions go to")
        if self._file is not None and create:
            self._file.parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {}
        if self.url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise InputError(f"cannot use the decision log URL {self.safe_url!r}: "
                             f"{type(exc).__name__}: {exc}",
                             "write e.g. sqlite:///decisions.db or postgresql+psycopg://host/db "
                             "(with its driver installed)") from exc
        md, recs, decs = _tables()
        try:
            if create:
                md.create_all(self.engine, checkfirst=True)
                if self.engine.dialect.name == "sqlite":
                    with self.engine.begin() as conn:
                        for stmt in _SQLITE_APPEND_ONLY:
                            conn.exec_driver_sql(stmt)
            else:
                names = set(sa.inspect(self.engine).get_table_names())
                if not {RECOMMENDATIONS_TABLE, DECISIONS_TABLE} <= names:
                    raise InputError(f"{self.safe_url!r} holds no decision log (no "
                                     f"{RECOMMENDATIONS_TABLE}/{DECISIONS_TABLE} tables)",
                                     "pass the database the officers' decisions go to")
        except SQLAlchemyError as exc:
            raise InputError(f"cannot open the decision log {self.safe_url!r}: "
                             f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                             "check the URL, that the database is reachable and the "
                             "permissions") from exc
        self._recs, self._decs = recs, decs

    # -- identity --------------------------------------------------------------------------
    @property
    def safe_url(self) -> str:
        """The URL without its password."""
        import re

        return re.sub(r"(//[^/:@]+):[^/@]+@", r"\1:***@", self.url)

    def __repr__(self) -> str:
        return f"DecisionLog({self.safe_url!r})"

    def describe(self) -> dict[str, Any]:
        """URL (without password) and counts, for a report."""
        return {"url": self.safe_url, **self.counts()}

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------
    def add_recommendations(self, recommendations: Sequence[Recommendation]) -> int:
        """Record recommendations (one transaction); returns how many.

        Raises
        ------
        AlreadyRecommendedError
            When a case already has a recommendation (nothing is recorded then).
        """
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        recs = list(recommendations)
        ids = [r.case_id for r in recs]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise AlreadyRecommendedError(f"case id {dup!r} appears twice",
                                          "give every case its own id")
        rows = [{"case_id": r.case_id, "model_id": r.model_id,
                 "score": None if r.score is None else float(r.score),
                 "label": json.dumps(_plain(r.label)),
                 "reasons": json.dumps(_plain([dict(x) for x in r.reasons])),
                 "groups": json.dumps(_plain(dict(r.groups))), "note": r.note or None,
                 "recommended_at": _naive(r.recommended_at or datetime.now(UTC))} for r in recs]
        try:
            with self.engine.begin() as conn:
                for start in range(0, len(ids), 500):
                    chunk = ids[start:start + 500]
                    hit = conn.execute(sa.select(self._recs.c.case_id).where(
                        self._recs.c.case_id.in_(chunk)).limit(1)).scalar()
                    if hit is not None:
                        raise AlreadyRecommendedError(
                            f"case {hit!r} already has a recommendation",
                            "records are never replaced: use a new case id for a new "
                            "assessment")
                if rows:
                    conn.execute(sa.insert(self._recs), rows)
        except IntegrityError as exc:
            raise AlreadyRecommendedError("a case was recommended by another process at the "
                                          "same time", "records are never replaced: use a new "
                                                       "case id") from exc
        return len(rows)

    def _recommendation_row(self, conn: Any, case_id: str) -> Any:
        import sqlalchemy as sa

        return conn.execute(sa.select(self._recs).where(self._recs.c.case_id == case_id)
                            ).mappings().first()

    def decide(self, case_id: Any, *, officer: str, decision: str, outcome: Any = None,
               reason: str | None = None, at: datetime | None = None) -> Decision:
        """Record the officer's decision on a recommended case.

        Parameters
        ----------
        case_id : str
            The case (as given to :meth:`OverseenModel.recommend`).
        officer : str
            Who decided (an id, e.g. a badge number).
        decision : {"accept", "override"}
            ``accept``: the outcome is the recommendation. ``override``: the officer decides
            otherwise; needs ``outcome`` (different from the recommendation) and ``reason``.
        outcome : optional
            The final outcome (default for ``accept``: the recommended label).
        reason : str, optional
            Why (required for an override).
        at : datetime, optional
            When it was decided (default now); for importing decisions recorded elsewhere.

        Raises
        ------
        UnknownCaseError, AlreadyDecidedError, DecisionError

        Examples
        --------
        >>> log.decide("C-17", officer="PC 4711", decision="accept")    # doctest: +SKIP
        """
        import sqlalchemy as sa
        from sqlalchemy.exc import IntegrityError

        cid = str(case_id)
        officer = str(officer or "").strip()
        if not officer:
            raise DecisionError("no officer given", "pass officer= the id of who decided")
        kind = str(decision or "").strip().lower()
        if kind not in DECISIONS:
            raise DecisionError(f"decision {decision!r} is not accept or override",
                                "pass decision='accept' or decision='override'")
        reason = (str(reason).strip() or None) if reason is not None else None
        when = _utc(at)
        with self.engine.begin() as conn:
            rec = self._recommendation_row(conn, cid)
            if rec is None:
                raise UnknownCaseError(f"case {cid!r} has no recommendation in this log",
                                       "decide only cases the model recommended (check the id)")
            label = json.loads(rec["label"])
            if kind == "override":
                if reason is None:
                    raise DecisionError(f"overriding case {cid!r} needs a reason",
                                        "say why the officer decided otherwise (reason=...)")
                if outcome is None:
                    raise DecisionError(f"overriding case {cid!r} needs the officer's outcome",
                                        "pass outcome= what the officer decided")
                if _same(outcome, label):
                    raise DecisionError(f"the outcome {outcome!r} of case {cid!r} is the "
                                        "recommendation itself", "use decision='accept'")
            else:
                if outcome is not None and not _same(outcome, label):
                    raise DecisionError(f"accepting case {cid!r} means the outcome is the "
                                        f"recommendation {label!r}, not {outcome!r}",
                                        "use decision='override' with a reason")
                outcome = label
            rec_at = _aware(rec["recommended_at"])
            if rec_at is not None and when < rec_at:
                raise DecisionError(f"case {cid!r} would be decided before it was recommended",
                                    "check the decision time (at=)")
            done = conn.execute(sa.select(self._decs.c.id).where(
                self._decs.c.case_id == cid)).first()
            if done is not None:
                raise AlreadyDecidedError(f"case {cid!r} was already decided",
                                          "a decision is final and never replaced; record a "
                                          "new case for a new assessment")
            try:
                conn.execute(sa.insert(self._decs).values(
                    case_id=cid, officer=officer, decision=kind,
                    outcome=json.dumps(_plain(outcome)), reason=reason,
                    decided_at=_naive(when)))
            except IntegrityError as exc:
                raise AlreadyDecidedError(f"case {cid!r} was decided by someone else at the "
                                          "same time", "a decision is final; check the log"
                                          ) from exc
        secs = (when - rec_at).total_seconds() if rec_at is not None else None
        return Decision(case_id=cid, officer=officer, decision=kind, outcome=_plain(outcome),
                        reason=reason, decided_at=when, recommended_label=label,
                        seconds_to_decision=secs)

    # -- reading ---------------------------------------------------------------------------
    def recommendation(self, case_id: Any) -> Recommendation:
        """The recommendation recorded for ``case_id`` (``UnknownCaseError`` if none)."""
        with self.engine.connect() as conn:
            rec = self._recommendation_row(conn, str(case_id))
        if rec is None:
            raise UnknownCaseError(f"case {str(case_id)!r} has no recommendation in this log",
                                   "check the id")
        return Recommendation(case_id=rec["case_id"], model_id=rec["model_id"],
                              score=rec["score"], label=json.loads(rec["label"]),
                              reasons=tuple(json.loads(rec["reasons"])),
                              groups=json.loads(rec["groups"]),
                              recommended_at=_aware(rec["recommended_at"]),
                              note=rec["note"] or "")

    def outcome(self, case_id: Any) -> Any:
        """The final outcome of a decided case.

        Raises
        ------
        NotDecidedError
            While the case waits for an officer: a recommendation is not an outcome.
        """
        import sqlalchemy as sa

        self.recommendation(case_id)  # UnknownCaseError first
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self._decs.c.outcome).where(
                self._decs.c.case_id == str(case_id))).first()
        if row is None:
            raise NotDecidedError(f"case {str(case_id)!r} has no decision yet: there is no "
                                  "final outcome", "an officer must decide it first (decide())")
        return json.loads(row[0])

    def counts(self, *, model_id: str | None = None) -> dict[str, int]:
        """How many cases were recommended, decided and are pending."""
        import sqlalchemy as sa

        r, d = self._recs, self._decs
        q_all = sa.select(sa.func.count()).select_from(r)
        q_dec = sa.select(sa.func.count()).select_from(d.join(r, d.c.case_id == r.c.case_id))
        if model_id is not None:
            q_all = q_all.where(r.c.model_id == model_id)
            q_dec = q_dec.where(r.c.model_id == model_id)
        with self.engine.connect() as conn:
            n_all = int(conn.execute(q_all).scalar() or 0)
            n_dec = int(conn.execute(q_dec).scalar() or 0)
        return {"recommended": n_all, "decided": n_dec, "pending": n_all - n_dec}

    def _frame(self, *, decided: bool, model_id: str | None) -> Any:
        import pandas as pd
        import sqlalchemy as sa

        r, d = self._recs, self._decs
        if decided:
            q = sa.select(r.c.case_id, r.c.model_id, r.c.score, r.c.label, r.c.reasons,
                          r.c.groups, r.c.note, r.c.recommended_at, d.c.officer, d.c.decision,
                          d.c.outcome, d.c.reason, d.c.decided_at
                          ).select_from(r.join(d, d.c.case_id == r.c.case_id)).order_by(d.c.id)
        else:
            q = sa.select(r.c.case_id, r.c.model_id, r.c.score, r.c.label, r.c.reasons,
                          r.c.groups, r.c.note, r.c.recommended_at
                          ).select_from(r.outerjoin(d, d.c.case_id == r.c.case_id)
                                        ).where(d.c.id.is_(None)).order_by(r.c.id)
        if model_id is not None:
            q = q.where(r.c.model_id == model_id)
        with self.engine.connect() as conn:
            rows = [dict(m) for m in conn.execute(q).mappings()]
        for row in rows:
            row["label"] = json.loads(row["label"])
            row["reasons"] = json.loads(row["reasons"])
            row["groups"] = json.loads(row["groups"])
            row["recommended_at"] = _aware(row["recommended_at"])
            if decided:
                row["outcome"] = json.loads(row["outcome"])
                row["decided_at"] = _aware(row["decided_at"])
                row["seconds_to_decision"] = (row["decided_at"]
                                              - row["recommended_at"]).total_seconds()
        cols = ["case_id", "model_id", "score", "label", "reasons", "groups", "note",
                "recommended_at"]
        if decided:
            cols += ["officer", "decision", "outcome", "reason", "decided_at",
                     "seconds_to_decision"]
        return pd.DataFrame(rows, columns=cols)

    def outcomes(self, *, model_id: str | None = None) -> Any:
        """Decided cases only, one row each, in decision order (a pandas DataFrame).

        Columns: case_id, model_id, score, label (recommended), reasons, groups, note,
        recommended_at, officer, decision, outcome (final), reason, decided_at,
        seconds_to_decision.
        """
        return self._frame(decided=True, model_id=model_id)

    def pending(self, *, model_id: str | None = None) -> Any:
        """Recommended cases that wait for a decision (a pandas DataFrame): no final outcome
        exists for them."""
        return self._frame(decided=False, model_id=model_id)


# -- the model under oversight ---------------------------------------------------------------
class OverseenModel:
    """A model that only recommends; an officer decides (see the module docstring).

    Parameters
    ----------
    model : fitted classifier
        Anything with ``predict`` (and ideally ``predict_proba``), e.g. a Pipeline.
    log : DecisionLog
        Where recommendations and decisions are recorded.
    model_id : str
        The model's name and version, recorded with every recommendation.
    background : DataFrame, optional
        Typical rows (e.g. training data) for the explanations; without it recommendations
        carry no reasons (and say so in ``note``).
    features : list of str, optional
        The model's input columns (default ``model.feature_names_in_``, else every column of
        ``X`` but ``groups``).
    groups : list of str
        Columns of ``X`` recorded with each case (the sensitive attributes the oversight check
        reviews decisions by). They are not passed to the model unless listed in ``features``.
    threshold : float, optional
        Label = score >= threshold; default the model's own ``predict``.
    top : int
        Reasons per case.
    seed : int
        Seed of the explainer.

    Examples
    --------
    >>> om = OverseenModel(clf, log=DecisionLog("decisions.db"), model_id="triage-v3",
    ...                    background=train[FEATURES], groups=["ethnicity"])  # doctest: +SKIP
    >>> recs = om.recommend(new_cases, case_ids="case_id")             # doctest: +SKIP
    """

    def __init__(self, model: Any, *, log: DecisionLog, model_id: str, background: Any = None,
                 features: Sequence[str] | None = None, groups: Sequence[str] = (),
                 threshold: float | None = None, top: int = 3, seed: int = 0) -> None:
        if not hasattr(model, "predict"):
            from .errors import ModelError
            raise ModelError(f"{type(model).__name__} has no predict()",
                             "pass a fitted classifier")
        if not isinstance(log, DecisionLog):
            raise InputError("log must be a DecisionLog",
                             "pass log=DecisionLog('sqlite:///decisions.db')")
        if not str(model_id or "").strip():
            raise InputError("no model_id given", "name the model and its version, e.g. "
                                                  "model_id='triage-v3'")
        self.model = model
        self.log = log
        self.model_id = str(model_id).strip()
        self.background = background
        self.features = list(features) if features is not None else None
        self.groups = [groups] if isinstance(groups, str) else list(groups)
        self.threshold = threshold
        self.top = int(top)
        self.seed = int(seed)

    def _features(self, X: Any) -> list[str]:
        if self.features is not None:
            return self.features
        names = getattr(self.model, "feature_names_in_", None)
        if names is not None:
            return [str(c) for c in names]
        return [str(c) for c in X.columns if c not in self.groups]

    def _reasons(self, Xf: Any, feats: list[str]) -> tuple[list[list[dict[str, Any]]], str]:
        n = len(Xf)
        if self.background is None:
            return [[] for _ in range(n)], ("no reasons: the model was wrapped without "
                                            "background= rows to explain against")
        try:
            from .explain import explain_cases
        except (ImportError, AttributeError):
            return [[] for _ in range(n)], ("no reasons: this installation has no explainer "
                                            "(lea_ai_audit.explain)")
        try:
            bg = self.background[feats] if hasattr(self.background, "columns") and \
                set(feats) <= set(self.background.columns) else self.background
            out = explain_cases(self.model, Xf, background=bg, features=feats, top=self.top,
                                seed=self.seed)
        except Exception as exc:  # the officer must know reasons are missing, and why
            msg = f"no reasons: the explainer failed ({type(exc).__name__}: {exc})"
            warnings.warn(msg, RuntimeWarning, stacklevel=3)
            return [[] for _ in range(n)], msg
        return [[{"feature": r.feature, "value": _plain(r.value),
                  "contribution": float(r.contribution), "text": r.text} for r in row]
                for row in out], ""

    def recommend(self, X: Any, *, case_ids: Sequence[Any] | str,
                  at: datetime | None = None) -> list[Recommendation]:
        """Score, explain and record the cases of ``X``; returns one recommendation per row.

        Parameters
        ----------
        X : DataFrame
            The cases: the model's input columns and the ``groups`` columns.
        case_ids : list or str
            One id per row, or the name of the column of ``X`` holding them.
        at : datetime, optional
            The time of the recommendation (default now).

        Raises
        ------
        InputError
            Ids missing, repeated or not one per row; ``groups`` columns absent.
        AlreadyRecommendedError
            When a case already has a recommendation (then nothing is recorded).
        """
        import numpy as np
        import pandas as pd

        if not isinstance(X, pd.DataFrame):
            raise InputError(f"X must be a pandas DataFrame, got {type(X).__name__}",
                             "pass the cases as a DataFrame with named columns")
        if isinstance(case_ids, str):
            if case_ids not in X.columns:
                from .errors import ColumnNotFoundError
                raise ColumnNotFoundError("case id", case_ids, X.columns)
            ids_raw = X[case_ids].tolist()
        else:
            ids_raw = list(case_ids)
        if len(ids_raw) != len(X):
            raise InputError(f"{len(ids_raw)} case ids for {len(X)} cases",
                             "give exactly one id per row")
        if any(i is None or (isinstance(i, float) and math.isnan(i)) for i in ids_raw):
            raise InputError("a case id is missing", "give every case an id")
        ids = [str(_plain(i)) for i in ids_raw]
        missing = [g for g in self.groups if g not in X.columns]
        if missing:
            from .errors import ColumnNotFoundError
            raise ColumnNotFoundError("group", missing[0], X.columns)
        feats = self._features(X)
        absent = [f for f in feats if f not in X.columns]
        if absent:
            from .errors import ColumnNotFoundError
            raise ColumnNotFoundError("feature", absent[0], X.columns)
        Xf = X[feats]
        score = None
        if hasattr(self.model, "predict_proba"):
            proba = np.asarray(self.model.predict_proba(Xf))
            score = proba[:, -1] if proba.ndim == 2 else proba
        if self.threshold is not None:
            if score is None:
                raise InputError("threshold= needs a model with predict_proba",
                                 "leave threshold unset to use the model's predict()")
            labels = (score >= self.threshold).astype(int).tolist()
        else:
            labels = [_plain(v) for v in np.asarray(self.model.predict(Xf)).tolist()]
        reasons, note = self._reasons(Xf, feats)
        when = _utc(at)
        groups = X[self.groups].to_dict("records") if self.groups else [{} for _ in ids]
        recs = [Recommendation(case_id=cid, model_id=self.model_id,
                               score=None if score is None else _plain(float(score[i])),
                               label=labels[i], reasons=tuple(reasons[i]),
                               groups=_plain(groups[i]), recommended_at=when, note=note)
                for i, cid in enumerate(ids)]
        self.log.add_recommendations(recs)
        return recs

    def decide(self, case_id: Any, *, officer: str, decision: str, outcome: Any = None,
               reason: str | None = None, at: datetime | None = None) -> Decision:
        """Record an officer's decision (see :meth:`DecisionLog.decide`)."""
        return self.log.decide(case_id, officer=officer, decision=decision, outcome=outcome,
                               reason=reason, at=at)
