"""Human oversight items that no computation can decide (Council 13083/1/20 §27, §28).

An attestation requirement stays WARN ("awaiting attestation") until a person states how it
is met: ``audit(..., attestations={"officer-training": "course X, 2026-10"})`` or
``lea-audit run --attest officer-training="..."``. The statement is recorded as evidence, with
the report's author; the sign-off of the report by reviewers confirms it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..results import CheckResult, Evidence, Status
from . import Check, register

if TYPE_CHECKING:
    from ..context import AuditContext


@register
class Attestation(Check):
    """A question a person must answer; no check can decide it.

    Parameters
    ----------
    item : str
        Stable key of the item (the key of ``attestations=``).
    question : str
        What the person attests, in plain words.
    """

    id = "oversight.attestation"
    title = "Manual attestation"

    def __init__(self, *, item: str = "", question: str = "") -> None:
        self.item = item
        self.question = question

    def validate(self) -> None:
        if not self.item or not self.question:
            raise ValueError("an attestation needs an item key and a question")

    def run(self, ctx: AuditContext) -> CheckResult:
        statement = ctx.attestations.get(self.item)
        if statement and str(statement).strip():
            return self.result(
                Status.PASS, f"attested: {statement}",
                evidence=[Evidence("attestation", "json",
                                   {"item": self.item, "question": self.question,
                                    "statement": str(statement)},
                                   "stated by the report's author; confirmed by sign-off")])
        return self.result(Status.WARN, f"awaiting human attestation ({self.item}): "
                                        f"{self.question}",
                           evidence=[Evidence("question", "text", self.question)])
