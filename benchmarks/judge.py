"""Speed of a local LLM judge (generative runs' `judge`): the same answers judged with prompt
judge-v1 (the question first, so the prompts share only the system prompt) and judge-v2 (the
scales and target style first), each with the shared-prefix cache of lm.LocalLM.generate off and
on, in one run, on the same model, questions and answers. Prints answers/s, the ratio to v1
without the cache (what a run did before), the tokens every prompt shares, and whether the
cached replies equal the uncached ones of the same prompt (greedy decoding).

The answers judged are the persona task's reference answers prefixed with a pirate phrase, so
that the prompts have the lengths of a real run's; judge replies are short (`--new` tokens).

  .venv/bin/python benchmarks/judge.py                         # qwen2.5-coder-1.5b-instruct, the persona judge
  .venv/bin/python benchmarks/judge.py --model smollm2-135m --answers 16
"""
from __future__ import annotations

import argparse
import os
import time

from w2sgen.generative.judge import PROMPTS, judge_conversation
from w2sgen.generative.tasks import GEN_TASKS
from w2sgen.hardware import header
from w2sgen.lm import LocalLM, Sampling
from w2sgen.lm.local import shared_length


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--answers", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--new", type=int, default=24, help="judge reply tokens (the config's max_new_tokens)")
    ap.add_argument("--precision", default="auto")
    args = ap.parse_args()
    print(header(), f"load average {os.getloadavg()[0]:.1f}", sep="; ")
    questions, behaviour = GEN_TASKS.get("persona").load(persona="pirate")
    qs = [q for q in questions if q.answer][:args.answers]
    answers = [f"Arr, matey! {q.answer}" for q in qs]
    sampling = Sampling(args.new, 0.0)
    lm = LocalLM(args.model, "cpu", args.precision, batch_size=args.batch, shared=True)
    lm.generate([judge_conversation(PROMPTS["v1"], "warm", "up", behaviour.style, None)], Sampling(2, 0.0))
    rows, base, replies = [], None, {}
    for version in ("v1", "v2"):
        convs = [judge_conversation(PROMPTS[version], q.question, a, behaviour.style, q.answer)
                 for q, a in zip(qs, answers)]
        prompts = [lm.encode(lm.render(c)[0]) for c in convs]
        for cached in (False, True):
            lm.cache_shared_prefix = cached
            t0 = time.perf_counter()
            replies[version, cached] = lm.generate(convs, sampling)
            seconds = time.perf_counter() - t0
            base = base or seconds
            rows.append((version, cached, len(qs) / seconds, base / seconds, shared_length(prompts),
                         sum(map(len, prompts)) / len(prompts)))
    print(f"{args.model} ({lm.precision}), {len(qs)} answers, batch {args.batch}, {args.new} new tokens:")
    print(f"  {'prompt':<9} {'cache':<6} {'answers/s':>9} {'vs v1 uncached':>15} {'shared tokens':>14} {'mean prompt':>12}")
    for version, cached, rate, ratio, shared, mean in rows:
        print(f"  {'judge-' + version:<9} {'on' if cached else 'off':<6} {rate:9.2f} {ratio:14.2f}x "
              f"{shared:14d} {mean:12.0f}")
    for version in ("v1", "v2"):
        same = sum(a == b for a, b in zip(replies[version, False], replies[version, True]))
        print(f"  judge-{version}: cached replies equal the uncached ones for {same} of {len(qs)} answers")


if __name__ == "__main__":
    main()
