#!/usr/bin/env bash
# A CI step that blocks a model whose audit fails.
#   bash examples/ci_gate.sh cases.csv
# Exit codes: 0 pass or warn, 1 fail (the job stops), 2 bad input.
set -euo pipefail
DATA=${1:?usage: ci_gate.sh CASES.csv}
OUT=${2:-audit}
lea-audit run --data "$DATA" --target reoffended --prediction-col flagged --score-col risk \
    --sensitive ethnicity --sensitive sex --reference-group ethnicity=majority \
    --author "${CI_COMMIT_AUTHOR:-ci}" --out "$OUT" --quiet || [ $? -eq 1 ]  # 2 = bad input: stop
lea-audit gate "$OUT/report.json" --junit "$OUT/junit.xml"
