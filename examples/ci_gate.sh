#!/usr/bin/env bash
# A CI step that blocks a model whose audit fails, for a vendor's exported decisions and scores.
#   bash examples/ci_gate.sh cases.csv [OUT]
# Exit codes: 0 the gate is open, 1 it is closed (the job stops), 2 bad input (one line says why).
# Paste-ready jobs for GitHub Actions and GitLab CI, with the columns in lea-audit.yaml, the
# officers' sign-off, the trust store and the model check, are in examples/ci/.
set -euo pipefail
DATA=${1:?usage: ci_gate.sh CASES.csv [OUT]}
OUT=${2:-audit}
# who ran the audit: GitHub's actor, GitLab's "Name <email>", else "ci"
AUTHOR=${GITHUB_ACTOR:-${CI_COMMIT_AUTHOR:-ci}}
code=0
lea-audit run --data "$DATA" --target reoffended --prediction-col flagged --score-col risk \
    --sensitive ethnicity --sensitive sex --reference-group ethnicity=majority \
    --author "$AUTHOR" --out "$OUT" --quiet || code=$?
if [ "$code" -ge 2 ]; then exit "$code"; fi  # bad input: stop here; a FAIL is the gate's to say
lea-audit gate "$OUT/report.json" --junit "$OUT/junit.xml"
