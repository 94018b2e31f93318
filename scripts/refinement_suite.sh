#!/usr/bin/env bash
# ICL refinement on the offline tasks with a real weak-strong gap (docs/refinement.md, part 2):
# refined-label accuracy against k on MultiEmo (first: it is the cheaper part), then
# weak / naive / icl_refine / ceiling over seeds 0-2, default pair (minilm-l6 -> mpnet-base,
# probes), SmolLM2-135M as the refining LM.
# Usage: scripts/refinement_suite.sh [STORE]   (every step is cached: a rerun redoes only
# what is missing; pass the methods-suite store to reuse its weak labels and features)
set -euo pipefail
store=${1:-runs/refinement}
w2s=${W2S:-.venv/bin/w2s}
variants=(
  "method=naive"
  "method=icl_refine method.lm=smollm2-135m method.k=4"
  "method=icl_refine method.lm=smollm2-135m method.k=8 method.batch=fixed method.balance=true"
)
tasks=(
  "task=multiemo_pos_neg"
  "task=epistemic_reasoning splits.weak_train=0.3 splits.transfer=0.3 splits.test=0.4"
  "task=sports_understanding splits.weak_train=0.3 splits.transfer=0.3 splits.test=0.4"
)
# Refined-label accuracy against k: MultiEmo seed 0, 500 transfer examples, both batchings.
for k in 0 1 2 4 8 16; do
  for batch in "method.batch=loo" "method.batch=fixed method.balance=true"; do
    # shellcheck disable=SC2086
    "$w2s" run configs/default.yaml splits.transfer=500 method=icl_refine method.lm=smollm2-135m \
      "method.k=$k" $batch method.eval_size=0 "--store=$store" > /dev/null \
      || echo "FAILED: k=$k $batch" >&2
    echo "done: k=$k $batch"
  done
done
for seed in 0 1 2; do
  for task in "${tasks[@]}"; do
    for variant in "${variants[@]}"; do
      # shellcheck disable=SC2086  # task and variant are lists of key=value words
      "$w2s" run configs/default.yaml $task $variant "seed=$seed" "--store=$store" > /dev/null \
        || echo "FAILED: $task $variant seed=$seed" >&2
      echo "done: $task | $variant | seed $seed"
    done
  done
done
