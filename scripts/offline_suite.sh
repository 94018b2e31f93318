#!/usr/bin/env bash
# The offline suite, end to end: every method x the BIG-bench tasks with a real weak-strong gap
# x 3 seeds (suites/offline.yaml), then the readable report, written to docs/offline-suite.md
# (+ docs/offline-suite/ with the figures and the self-contained HTML).
# Usage: scripts/offline_suite.sh [STORE]   (what `make offline-suite` runs; resumable)
set -euo pipefail
store=${1:-runs/offline-suite}
w2s=${W2S:-.venv/bin/w2s}
start=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$w2s" sweep suites/offline.yaml --store "$store" | tee "$log"
cells=$(grep -E '^[0-9]+ cells: ' "$log" | tail -n 1 | sed -E 's/; [0-9.]+ s$//')
sweep_s=$(( $(date +%s) - start ))
"$w2s" report --store "$store" --html --out docs/offline-suite
total_s=$(( $(date +%s) - start ))
cap=$("${PYTHON:-.venv/bin/python}" -c "import torch; print(torch.backends.cpu.get_cpu_capability())" 2>/dev/null || echo unknown)
{
  echo "# The offline suite"
  echo
  echo "Every method and loss x the three BIG-bench tasks with a real weak-strong gap (multiemo_pos_neg,"
  echo "epistemic_reasoning, sports_understanding) x 3 seeds, minilm-l6 -> mpnet-base probes (\`suites/offline.yaml\`)."
  echo "The tasks are read from BIG-bench, so reproducing this page needs the optional \`bigbench\` asset"
  echo "([assets.md](assets.md)); without it the suite refuses in one line naming it."
  echo
  echo "Produced by \`make offline-suite\` (= \`scripts/offline_suite.sh\`): \`w2s sweep suites/offline.yaml\`"
  echo "then \`w2s report --html\`, on $(nproc) CPU cores ($(uname -m), torch CPU capability ${cap}), commit"
  echo "$(git rev-parse --short HEAD 2>/dev/null || echo unknown), store \`$store\`."
  echo "This invocation: ${cells} (cells already finished in the store are not recomputed)."
  echo "The self-contained HTML version is [offline-suite/report.html](offline-suite/report.html)."
  echo
  # the report's Markdown, with its figure links pointing into docs/offline-suite/
  sed -E 's/\]\(([^)/]+\.png)\)/](offline-suite\/\1)/g' docs/offline-suite/report.md
} > docs/offline-suite.md
echo "wrote docs/offline-suite.md (sweep ${sweep_s} s, total ${total_s} s)"
