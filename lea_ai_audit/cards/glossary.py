"""The card's technical terms in plain words: explained where each first appears (an ``abbr``
with the definition, linked to the glossary) and listed in a glossary of every term the card
uses.

:func:`annotator` returns the Jinja filter of one rendering: it escapes the text, then marks
the terms in it; the first occurrence of a term in the page links to its glossary entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: key -> (term as listed, plain definition, patterns that name it in the card's text)
GLOSSARY: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "fpr": ("FPR (false positive rate)",
            "Of the people who did not have the outcome, the share the tool flagged anyway: "
            "people wrongly flagged.", (r"\bFPR\b", r"(?i:\bfalse positive rates?\b)")),
    "fnr": ("FNR (false negative rate)",
            "Of the people who had the outcome, the share the tool did not flag: risks missed.",
            (r"\bFNR\b", r"(?i:\bfalse negative rates?\b)")),
    "tpr": ("TPR (true positive rate, recall)",
            "Of the people who had the outcome, the share the tool flagged.",
            (r"\bTPR\b", r"(?i:\btrue positive rates?\b)", r"(?i:\brecall\b)")),
    "tnr": ("TNR (true negative rate)",
            "Of the people who did not have the outcome, the share the tool did not flag.",
            (r"\bTNR\b", r"(?i:\btrue negative rates?\b)")),
    "ppv": ("PPV (precision, positive predictive value)",
            "Of the people the tool flagged, the share who did have the outcome: how often a "
            "flag is right. For police stops: the hit rate.",
            (r"\bPPV\b", r"(?i:\bprecision\b)", r"(?i:\bhit rates?\b)")),
    "npv": ("NPV (negative predictive value)",
            "Of the people the tool did not flag, the share who indeed did not have the "
            "outcome.", (r"\bNPV\b", r"(?i:\bnegative predictive value\b)")),
    "fdr": ("FDR (false discovery rate)",
            "Of the people the tool flagged, the share who did not have the outcome "
            "(1 − PPV).", (r"\bFDR\b", r"(?i:\bfalse discovery rate\b)")),
    "for": ("FOR (false omission rate)",
            "Of the people the tool did not flag, the share who did have the outcome.",
            (r"\bFOR\b", r"(?i:\bfalse omission rate\b)")),
    "selection_rate": ("selection rate",
                       "The share of a group the tool flags.",
                       (r"(?i:\bselection rates?\b)",)),
    "base_rate": ("base rate", "The share of a group recorded with the outcome.",
                  (r"(?i:\bbase rates?\b)",)),
    "reference": ("reference group",
                  "The group every other group is compared with: declared by the auditor "
                  "(--reference-group) or, where none is declared, the largest group. For "
                  "combinations of attributes, the cell that combines each attribute's "
                  "reference group.", (r"(?i:\breference groups?\b)",)),
    "interval": ("confidence interval",
                 "The range of values the data are compatible with: the true rate lies in a "
                 "95% interval in 95 of 100 audits like this one. A wide interval means few "
                 "cases and little certainty.",
                 (r"(?i:\bconfidence intervals?\b)", r"(?i:\bintervals?\b)")),
    "two-sided": ("two-sided test",
                  "A gap counts whichever way it goes: a group above the reference group or "
                  "below it.", (r"(?i:\btwo-sided\b)",)),
    "tolerance": ("tolerance",
                  "The largest gap from the reference group the policy accepts, e.g. 10 "
                  "percentage points, or a ratio between 0.8 and 1.25.",
                  (r"(?i:\btolerances?\b)",)),
    "four-fifths": ("four-fifths rule",
                    "A group's rate should be at least 80% (four fifths) of the reference "
                    "group's, and at most 125%.", (r"(?i:\bfour-fifths rule\b)",)),
    "disparity": ("disparity", "A difference in a rate between a group and the reference "
                               "group.", (r"(?i:\bdisparit(?:y|ies)\b)",)),
    "demonstrated": ("demonstrated / not demonstrated",
                     "Demonstrated: the whole interval lies inside the tolerance, so the data "
                     "show the group is treated alike. Not demonstrated: the interval reaches "
                     "beyond the tolerance, so the data cannot show it (often: too few "
                     "cases).", (r"(?i:\bnot demonstrated\b)", r"(?i:\bdemonstrated\b)")),
    "inconclusive": ("inconclusive",
                     "The estimate is beyond the tolerance, but its interval reaches back "
                     "inside: the gap may be chance.", (r"(?i:\binconclusive\b)",)),
    "insufficient": ("insufficient evidence",
                     "The group has too few cases (below the policy's minimum) to conclude "
                     "anything; it is never counted as a pass.",
                     (r"(?i:\binsufficient evidence\b)",)),
    "holm": ("Holm adjustment",
             "Comparing many groups finds some gaps by chance; Holm's method widens the "
             "intervals just enough that the chance of any false finding stays at 5%.",
             (r"\bHolm(?:-adjusted|'s)?\b",)),
    "bonferroni": ("Bonferroni correction",
                   "A simpler, stricter way than Holm's to allow for many comparisons.",
                   (r"\bBonferroni(?:'s)?\b",)),
    "family-wise": ("family-wise error",
                    "The chance of at least one false finding among all the comparisons of a "
                    "family (e.g. all groups of one attribute).", (r"(?i:\bfamily-wise\b)",)),
    "p-value": ("p-value",
                "How surprising the observed gap would be if there were none; small values "
                "(below 0.05) mean the gap is unlikely to be chance.",
                (r"(?i:\bp-values?\b)", r"\bp \(adjusted\)")),
    "detectable": ("smallest detectable difference",
                   "The smallest gap these data could reliably have found; smaller gaps may "
                   "exist unseen.", (r"(?i:\bsmallest detectable difference\b)",)),
    "intersection": ("intersection (intersectional)",
                     "Combinations of attributes, e.g. race & sex & age: a group can be "
                     "treated unfairly only in combination.",
                     (r"(?i:\bintersection(?:al|s)?\b)",)),
    "shap": ("SHAP values",
             "How much each input moved one case's score away from the average case's score "
             "(Shapley values, Lundberg and Lee 2017).", (r"\bSHAP\b",)),
    "log-odds": ("log-odds",
                 "The scale a model's score is explained on: the logarithm of p / (1 − p); "
                 "0 means even odds.", (r"(?i:\blog-odds\b)",)),
    "auc": ("AUC",
            "How well scores rank people with the outcome above those without: 1 is perfect, "
            "0.5 is chance. Also used for how well an input predicts a sensitive attribute "
            "(a proxy).", (r"\bAUC\b",)),
    "ece": ("ECE (expected calibration error)",
            "The average gap between the scores and the observed rates, score band by score "
            "band.", (r"\bECE\b",)),
    "calibration": ("calibration",
                    "Whether scores mean what they say: of the people scored 30%, about 30% "
                    "have the outcome.", (r"(?i:\bcalibrat(?:ion|ed)\b)",)),
    "psi": ("PSI (population stability index)",
            "How far the spread of an input's values has moved from the training data's; "
            "above 0.2 is usually a marked shift.", (r"\bPSI\b",)),
    "drift": ("drift", "A change in the data since the model was trained.",
              (r"(?i:\bdrift\b)",)),
    "proxy": ("proxy",
              "An input that stands in for a sensitive attribute (e.g. district for "
              "ethnicity), so the model can discriminate without seeing the attribute.",
              (r"(?i:\bprox(?:y|ies)\b)",)),
    "leakage": ("target leakage",
                "An input recorded after the outcome or derived from it, which gives the "
                "answer away.", (r"(?i:\bleakage\b)",)),
    "bootstrap": ("bootstrap",
                  "Re-running a computation on many resamples of the data to see how much "
                  "its result varies.", (r"(?i:\bbootstrap\b)",)),
    "sha256": ("SHA-256 digest",
               "A fingerprint of a file's exact content: any change to the file gives "
               "another digest.", (r"\bSHA-256\b", r"(?i:\bdigests?\b)")),
    "signoff": ("sign-off",
                "A reviewer's decision (approve, reject, withdraw) signed with their own key: "
                "it names this exact report, card, model, data and policy by their digests.",
                (r"(?i:\bsign-offs?\b)", r"(?i:\bsigned off\b)")),
    "waiver": ("waiver",
               "A signed, justified decision to accept a failed requirement; approving a "
               "failed audit needs one per failed requirement.", (r"(?i:\bwaivers?\b)",)),
    "attestation": ("attestation",
                    "A statement a person must make because no computation can decide it "
                    "(e.g. that officers are trained); also the audit's own signed statement "
                    "of what it found.", (r"(?i:\battestations?\b)",)),
    "four-eyes": ("four-eyes rule",
                  "At least two people other than the one who ran the audit must approve it.",
                  (r"(?i:\bfour-eyes\b)",)),
    "blocking": ("blocking / advisory",
                 "A blocking requirement that fails keeps the CI gate closed; an advisory one "
                 "is reported for a person to weigh.",
                 (r"(?i:\bblocking\b)", r"(?i:\badvisory\b)")),
    "gate": ("gate", "The check that stops a model from being deployed unless its audit "
                     "passed and the required sign-offs are valid.", (r"(?i:\bthe gate\b)",)),
}

_PATTERNS = [(key, pat) for key, (_, _, pats) in GLOSSARY.items() for pat in pats]
# a term inside an identifier (target-leakage, data-drift) is not the term
# (one edge test for every alternative: the alternation is tried only where a word begins)
_TERMS = re.compile("(?<![\\w-])(?=[A-Za-z])(?:"
                    + "|".join(f"(?P<t{i}>{p})" for i, (_, p) in enumerate(_PATTERNS))
                    + ")(?![\\w-])")


def _key(match: re.Match[str]) -> str:
    return _PATTERNS[int(match.lastgroup[1:])][0]  # type: ignore[index]


#: each term's own pattern (a search per term is far faster than the alternation on long text)
_BY_KEY = {key: re.compile("|".join(f"(?<![\\w-]){p}(?![\\w-])" for p in pats))
           for key, (_, _, pats) in GLOSSARY.items()}


def terms_in(texts: Iterable[str]) -> list[str]:
    """The glossary keys of the terms that occur in ``texts``, in glossary order."""
    text = "\n".join(str(t) for t in texts)
    return [k for k, pat in _BY_KEY.items() if pat.search(text)]


def annotator() -> Any:
    """A Jinja filter for one rendering of the HTML card: escape the text, mark each term as
    ``<abbr>`` with its definition, the first occurrence in the page also linked to the
    glossary (``#term-<key>``)."""
    from markupsafe import Markup, escape

    seen: set[str] = set()

    def mark(value: Any) -> Markup:
        if value is None:
            return Markup("")
        text = str(escape(value))

        def sub(m: re.Match[str]) -> str:
            key = _key(m)
            definition = str(escape(GLOSSARY[key][1]))
            word = m.group(0)
            if key in seen:
                return f'<abbr title="{definition}">{word}</abbr>'
            seen.add(key)
            return (f'<a class="term" href="#term-{key}"><abbr title="{definition}" '
                    f'data-term="{key}">{word}</abbr></a>')
        return Markup(_TERMS.sub(sub, text))

    return mark
