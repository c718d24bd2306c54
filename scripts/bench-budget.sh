#!/usr/bin/env bash
# The guess budget under hydra's parallelism: how many password checks one attacking address
# lands in Dovecot's log through the guard, with hydra -t 1, 4, 16 and 64, with Dovecot's
# failure delays and auth penalty off and on (the lab's real Postfix 3.7 + Dovecot 2.3; the
# guard on its defaults but backend.identity none and AUTH in clear text). It runs the
# integration test tests/integration/budget.sh with those task counts, so every figure comes
# with its PASS/FAIL checks; the table goes to standard output (paste it into BENCHMARKS.md).
#
#   bash scripts/bench-budget.sh        (root; about 8 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
table=$(mktemp /tmp/smtpguard-budget-figures.XXXXXX)
BUDGET_TASKS="1 4 16 64" BUDGET_PENALTY_TASKS="1 4 16 64" BUDGET_FIGURES="$table" bash tests/integration/budget.sh
echo
echo "Measured $(date -u +%Y-%m-%d) with: bash scripts/bench-budget.sh"
cat "$table"
rm -f "$table"
