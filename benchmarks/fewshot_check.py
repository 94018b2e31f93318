"""An independent few-shot prompting baseline (issue 15): plain transformers, none of the
project's prompting code (w2sgen.prompting, w2sgen.methods.icl_refine, w2sgen.lm).

From the project it takes only the data (task loaders, `make_splits` and `selection_pool`: the
examples are the task's *weak_train* split, never transfer or test, and the script stops in one
line if any of them is a test example of the run's splits or of the `--protect` splits) and, for a zoo name, where the weights are (`models.resolve` and
`models.source`: a path and `from_pretrained` keyword arguments). Everything else is here:

* Prompt: an optional instruction line, k demonstrations written with a template (`{text}`,
  `{label}`), then the query written with the template up to the label. The label word is put
  after the template's last character, with or without a leading space (`--space`).
* Chat (`--chat`): `none` (raw text); `single` (the whole prompt as one user message, the label
  word the first token of the assistant's reply); `turns` (each demonstration a user turn and an
  assistant turn with the bare label word, the query a last user turn). Chat prompts use the
  tokenizer's own chat template and no leading space.
* Tokens: the prompt is the prefix (everything before the query's text) tokenised as one string
  with the tokenizer's start tokens, followed by the rest tokenised as one string without them.
  `prompt_ids` returns exactly these ids; `logodds` scores ids.
* Score: the next-token logits after the prompt, logit(first token of the positive word) minus
  logit(first token of the negative word) (= log p(pos) - log p(neg), the softmax's normaliser
  cancels). The prefix is run once per demonstration set and its key/value cache copied for each
  query (`--no-cache` scores every prompt whole; the two agree to ~1e-5 in fp32).
* Calibration, all three reported from the same scores: `none`; `cc` (contextual calibration,
  Zhao et al. 2021: subtract the mean log-odds of content-free queries "N/A", "" and "[MASK]"
  after the same demonstrations; for two label words this equals dividing by the content-free
  probabilities and renormalising); `prior` (subtract the median log-odds of the scored queries,
  so half are called positive - the scored set is balanced; transductive, no labels used).
* Demonstrations: `--demo-sets` disjoint sets, each balanced over the *true* labels, drawn from
  the weak_train examples that are not scored; the queries are cut into as many chunks, chunk i
  prompted with set i. Order (`--order`): `random`, `alternate` (neg, pos, neg, ...), `alternate-pos`
  (pos first), `grouped` (all negatives, then all positives).
* Weak labels (`--weak-acc A`): a *simulated* weak supervisor, not a trained probe. In each
  class, exactly round((1-A) * n_class) labels are flipped (seeded), separately within the scored
  queries and within the demonstration pools, so the weak labels are class-symmetric noise and
  their accuracy on the queries is A up to rounding. `weak` demonstrations are the same examples as the
  `true` ones (balanced over true labels), shown with their weak labels and ordered by the
  `--order` rule applied to the shown labels.
* Report: accuracy on the N balanced queries with a Wilson 95% interval, and paired-bootstrap 95%
  intervals of (few-shot - zero-shot) and (few-shot-weak - weak labels) on the same queries.

Example (writes one JSON line per setting to --out as well as a table to stdout):

    nice -n 10 .venv/bin/python benchmarks/fewshot_check.py --model smollm2-135m \\
        --task rt_sentiment --n 160 --k 0 4 8 --demos true weak --weak-acc 0.8
"""
from __future__ import annotations

import argparse
import copy
import inspect
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

TEMPLATES = {  # name -> (instruction, template); {label} must be last (then whitespace)
    "input": ("{instruction}", "Input: {text}\nAnswer:{label}\n\n"),
    "review": ("{instruction}", "Review: {text}\nSentiment:{label}\n\n"),
    "sentence": ("", "Sentence: {text}\nSentiment:{label}\n\n"),
    "question": ("", "Text: {text}\nQuestion: Is the sentiment of this text positive or "
                     "negative?\nAnswer:{label}\n\n"),
}
WORDS = {"posneg": ("negative", "positive"), "goodbad": ("bad", "good"), "yesno": ("no", "yes")}
CALIBRATIONS = ("none", "cc", "prior")
CONTENT_FREE = ("N/A", "", "[MASK]")
DEFAULT_INSTRUCTION = "Is the sentiment of each text positive or negative?"


@dataclass(frozen=True)
class Format:
    template: str  # a TEMPLATES key or a literal template with {text} and {label}
    words: tuple[str, str]  # (negative, positive)
    chat: str = "none"  # none | single | turns
    space: bool = True  # a leading space before the label word (raw prompts only)
    instruction: str = DEFAULT_INSTRUCTION

    def parts(self) -> tuple[str, str]:
        if self.template in TEMPLATES:
            head, body = TEMPLATES[self.template]
            return head.format(instruction=self.instruction), body
        return self.instruction, self.template.encode().decode("unicode_escape")

    def word(self, label: int) -> str:
        w = self.words[int(label)]
        return (" " + w) if self.space and self.chat == "none" else w


def split_template(body: str) -> tuple[str, str]:
    """(the template up to {label}, what follows {label})."""
    cut = body.rindex("{label}")
    if "{text}" not in body or body[cut + len("{label}"):].strip():
        raise SystemExit(f"template must contain {{text}} and end with {{label}}: {body!r}")
    return body[:cut], body[cut + len("{label}"):]


def prompt_text(fmt: Format, tok: Any, demos: list[tuple[str, int]], query: str) -> tuple[str, str]:
    """(prefix, rest): the prompt as text, cut right before the query's text."""
    head, body = fmt.parts()
    before, after = split_template(body)
    marker = "\x00QUERY\x00"
    if fmt.chat == "none":
        text = (head + "\n\n" if head else "")
        text += "".join(before.format(text=t) + fmt.word(y) + after for t, y in demos)
        text += before.format(text=marker)
    else:
        if tok.chat_template is None:
            raise SystemExit("--chat needs a tokenizer with a chat template")
        if fmt.chat == "single":
            content = (head + "\n\n" if head else "")
            content += "".join(before.format(text=t) + fmt.word(y) + after for t, y in demos)
            content += before.format(text=marker).rstrip()
            messages = [{"role": "user", "content": content}]
        else:  # turns: the instruction in the first user turn
            messages = []
            for i, (t, y) in enumerate(demos):
                user = before.format(text=t).rstrip()
                messages += [{"role": "user", "content": (head + "\n\n" + user) if (i == 0 and head) else user},
                             {"role": "assistant", "content": fmt.word(y)}]
            user = before.format(text=marker).rstrip()
            messages.append({"role": "user", "content": (head + "\n\n" + user) if (not demos and head) else user})
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    i = text.index(marker)
    return text[:i], query + text[i + len(marker):]


def prompt_ids(tok: Any, prefix: str, rest: str) -> tuple[list[int], list[int]]:
    """Token ids: the prefix with the tokenizer's start tokens, the rest without."""
    a = list(tok(prefix, add_special_tokens=True)["input_ids"])
    if a and tok.eos_token_id is not None and a[-1] == tok.eos_token_id and prefix:
        a = a[:-1]  # a tokenizer that appends EOS to every text (none of ours; be safe)
    b = list(tok(rest, add_special_tokens=False)["input_ids"])
    return a, b


def first_token(tok: Any, word: str) -> tuple[int, int]:
    """(first token id of `word`, how many tokens it has)."""
    ids = tok(word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise SystemExit(f"label word {word!r} tokenises to nothing")
    return ids[0], len(ids)


def logodds(model: Any, ids: list[int], neg: int, pos: int) -> float:
    """logit(pos) - logit(neg) after the whole prompt `ids`: one plain forward pass."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
    return float(logits[pos] - logits[neg])


def logodds_cached(model: Any, prefix: list[int], rests: list[list[int]], neg: int, pos: int,
                   pad: int = 0, batch: int = 8) -> np.ndarray:
    """logodds(prefix + r) for every r: the prefix run once, its key/value cache repeated for a
    batch of right-padded continuations (positions continue after the prefix)."""
    import torch

    out = np.empty(len(rests))
    n = len(prefix)
    name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
    with torch.inference_mode():
        if n:
            pre = model(input_ids=torch.tensor([prefix]), use_cache=True)
            pre = getattr(pre, "cache", None) or pre.past_key_values
        for b in range(0, len(rests), batch):
            rows = rests[b:b + batch]
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), n + width), dtype=torch.long)
            mask[:, :n] = 1
            for i, r in enumerate(rows):
                ids[i, :len(r)] = torch.tensor(r)
                mask[i, n:n + len(r)] = 1
            kwargs = {}
            if n:
                kwargs[name] = copy.deepcopy(pre)
                kwargs[name].batch_repeat_interleave(len(rows))
            # The backbone, then the LM head on each row's last real position only (the head
            # over every position would cost as much as the whole body for Qwen's vocabulary).
            hidden = model.base_model(input_ids=ids, use_cache=bool(n), attention_mask=mask,
                                      position_ids=torch.arange(n, n + width).expand(len(rows), width),
                                      **kwargs).last_hidden_state
            last = model.get_output_embeddings()(
                hidden[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])]).float()
            cap = getattr(model.config, "final_logit_softcapping", None)
            if cap:  # as the model's own forward does (Gemma)
                last = torch.tanh(last / cap) * cap
            out[b:b + len(rows)] = (last[:, pos] - last[:, neg]).numpy()
    return out


# ------------------------------------------------------------------------------ data


def selection_split(task: str, sizes: tuple[int, int, int], seed: int,
                    protect: Sequence[Sequence[int]] = ()) -> list[Any]:
    """The task's weak_train split as the project cuts it (w2sgen.splits.make_splits), refused
    (w2sgen.splits.selection_pool) if it shares an id with the test split of these sizes or of
    any `protect` entry (WEAK TRANSFER TEST [SEED]: the runs the choice is for)."""
    from w2sgen.config import Component, SplitsConfig
    from w2sgen.errors import W2SError
    from w2sgen.splits import make_splits, selection_pool
    from w2sgen.tasks import load_task

    examples = load_task(Component(task, {}))

    def cut(s: Sequence[int]) -> Any:
        cfg = SplitsConfig(weak_train=s[0], transfer=s[1], test=s[2], seed=s[3] if len(s) > 3 else seed)
        return make_splits(examples, cfg, task)

    try:
        return selection_pool(cut((*sizes, seed)), task, [cut(p) for p in protect])
    except W2SError as e:
        raise SystemExit(f"error: {e}") from None


def text_of(e: Any) -> str:
    return e.text if e.text_pair is None else f"{e.text}\n{e.text_pair}"


def simulated_weak(y: np.ndarray, acc: float, rng: np.random.Generator) -> np.ndarray:
    """Labels with exactly round((1-acc) * n_c) flips in each class c."""
    weak = y.copy()
    for c in (0, 1):
        idx = np.flatnonzero(y == c)
        flip = rng.choice(idx, size=int(round((1 - acc) * len(idx))), replace=False)
        weak[flip] = 1 - c
    return weak


def order_demos(idx: np.ndarray, y: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    neg, pos = [list(rng.permutation(idx[y[idx] == c])) for c in (0, 1)]
    if how == "random":
        return rng.permutation(idx)
    if how == "grouped":
        return np.array(neg + pos, dtype=int)
    first, second = (pos, neg) if how == "alternate-pos" else (neg, pos)
    out = []
    while first or second:
        if first:
            out.append(first.pop())
        if second:
            out.append(second.pop())
    return np.array(out, dtype=int)


def choose(y: np.ndarray, n: int, k_max: int, sets: int, rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """(n balanced query indices, `sets` disjoint balanced demonstration pools of k_max) from the
    rest."""
    by = [rng.permutation(np.flatnonzero(y == c)) for c in (0, 1)]
    half = n // 2
    need = half + sets * (k_max // 2 + 1)
    if min(len(b) for b in by) < need:
        raise SystemExit(f"weak_train split too small: need {need} examples per class, have "
                         f"{[len(b) for b in by]}")
    queries = rng.permutation(np.concatenate([by[0][:half], by[1][:half]]))
    demo_sets = []
    for s in range(sets):
        lo = half + s * (k_max // 2 + 1)
        demo_sets.append(np.concatenate([by[0][lo:lo + k_max // 2 + k_max % 2],
                                         by[1][lo:lo + k_max // 2]]))
    return queries, demo_sets


# ------------------------------------------------------------------------------ stats


def wilson(correct: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    n, p = len(correct), float(np.mean(correct))
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return p, c - h, c + h


def paired_diff(a: np.ndarray, b: np.ndarray, seed: int = 0, reps: int = 2000) -> tuple[float, float, float]:
    d = np.asarray(a, float) - np.asarray(b, float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(reps, len(d)))].mean(axis=1)
    return float(d.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def calibrate(lo: np.ndarray, cf: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return lo
    if how == "cc":
        return lo - cf
    return lo - np.median(lo)


# ------------------------------------------------------------------------------ main


def load_model(name: str, threads: Optional[int]) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    if threads:
        torch.set_num_threads(threads)
    from pathlib import Path

    if Path(name).expanduser().is_dir():
        path, kwargs = str(Path(name).expanduser()), {}
    else:  # a zoo name: only where its files are, from the project (for a GGUF model, its
        # dequantised copy in the data home, made on first use: the same fp32 weights)
        from w2sgen.models import resolve, source

        path, kwargs = source(resolve(name), build=True)
    tok = AutoTokenizer.from_pretrained(path, **{k: v for k, v in kwargs.items() if k == "gguf_file"})
    kwargs["dtype"] = torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    model.eval()
    return model, tok


def parse(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="zoo name (w2s models) or a local model folder")
    p.add_argument("--task", default="rt_sentiment")
    p.add_argument("--splits", type=int, nargs=3, default=[2000, 2000, 2000], metavar=("WEAK", "TRANSFER", "TEST"),
                   help="the project's split sizes for the task (only weak_train is used)")
    p.add_argument("--protect", type=int, nargs="+", action="append", default=[],
                   metavar="N", help="WEAK TRANSFER TEST [SEED] of a run the choice is for: stop "
                   "if weak_train here shares an example with its test split (repeatable)")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--n", type=int, default=160, help="balanced weak_train examples scored")
    p.add_argument("--k", type=int, nargs="+", default=[0, 4, 8])
    p.add_argument("--demos", nargs="+", choices=["true", "weak"], default=["true", "weak"])
    p.add_argument("--weak-acc", type=float, default=0.8, help="simulated weak supervisor's accuracy")
    p.add_argument("--demo-sets", type=int, default=4)
    p.add_argument("--template", nargs="+", default=["input"], help=f"{list(TEMPLATES)} or a literal")
    p.add_argument("--instruction", default=DEFAULT_INSTRUCTION)
    p.add_argument("--words", nargs="+", default=["posneg"], help=f"{list(WORDS)} or neg,pos")
    p.add_argument("--space", nargs="+", choices=["yes", "no"], default=["yes"])
    p.add_argument("--chat", nargs="+", choices=["none", "single", "turns"], default=["none"])
    p.add_argument("--order", nargs="+", choices=["random", "alternate", "alternate-pos", "grouped"],
                   default=["random"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-cache", action="store_true", help="score every prompt whole")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--time-one", action="store_true", help="time one k=max prompt and stop")
    p.add_argument("--out", default=None, help="append one JSON line per setting here")
    return p.parse_args(argv)


def words_of(spec: str) -> tuple[str, str]:
    if spec in WORDS:
        return WORDS[spec]
    neg, _, pos = spec.partition(",")
    if not neg or not pos:
        raise SystemExit(f"--words: {spec!r} is neither {list(WORDS)} nor neg,pos")
    return neg, pos


def main(argv: Optional[list[str]] = None) -> int:
    a = parse(argv)
    ex = selection_split(a.task, tuple(a.splits), a.split_seed, a.protect)
    y = np.array([e.label for e in ex], dtype=int)
    texts = [text_of(e) for e in ex]
    rng = np.random.default_rng(a.seed)
    k_max = max(a.k)
    queries, pools = choose(y, a.n, max(k_max, 1), a.demo_sets, rng)
    weak = y.copy()  # exact flips within the scored queries, and within the demonstration pools
    weak[queries] = simulated_weak(y[queries], a.weak_acc, rng)
    pool_all = np.concatenate(pools)
    weak[pool_all] = simulated_weak(y[pool_all], a.weak_acc, rng)
    chunks = np.array_split(np.arange(len(queries)), a.demo_sets)
    yq, wq = y[queries], weak[queries]
    weak_correct = (wq == yq).astype(float)
    t0 = time.time()
    model, tok = load_model(a.model, a.threads)
    print(f"# {a.model} loaded in {time.time() - t0:.0f} s; task {a.task}: {len(ex)} weak_train examples, "
          f"{len(queries)} scored, weak labels on the scored queries {weak_correct.mean():.3f}", file=sys.stderr)
    fmts = []
    for tpl, w, sp, chat in itertools.product(a.template, a.words, a.space, a.chat):
        if chat != "none" and sp == "yes" and len(a.space) > 1:
            continue  # chat prompts carry no leading space: one setting, not two
        fmts.append(Format(tpl, words_of(w), chat, sp == "yes", a.instruction))
    results = []
    for fmt in fmts:
        neg, nneg = first_token(tok, fmt.word(0))
        pos, npos = first_token(tok, fmt.word(1))
        if neg == pos:
            raise SystemExit(f"label words {fmt.words} share their first token")
        zero: dict[str, np.ndarray] = {}
        for order, k, demos in itertools.product(a.order, sorted(a.k), a.demos):
            if k == 0 and (demos != a.demos[0] or order != a.order[0]):
                continue
            o_rng = np.random.default_rng(a.seed + 1000 * k)
            lo, cf = np.empty(len(queries)), np.empty(len(queries))
            n_tokens, t1 = [], time.time()
            for s, rows in enumerate(chunks):
                pool = pools[s]
                chosen = np.concatenate([pool[y[pool] == 0][:k // 2 + k % 2], pool[y[pool] == 1][:k // 2]]) if k else pool[:0]
                chosen = order_demos(chosen, y if demos == "true" else weak, order, o_rng) if k else chosen
                shown = y if demos == "true" else weak
                demo_list = [(texts[i], int(shown[i])) for i in chosen]
                prefix, _ = prompt_text(fmt, tok, demo_list, "")
                rests = []
                for q in list(queries[rows]) + [None] * len(CONTENT_FREE):
                    qt = texts[q] if q is not None else CONTENT_FREE[len(rests) - len(rows)]
                    pre, rest = prompt_text(fmt, tok, demo_list, qt)
                    assert pre == prefix
                    rests.append(prompt_ids(tok, pre, rest))
                pre_ids = rests[0][0]
                if a.time_one:
                    t2 = time.time()
                    logodds(model, pre_ids + rests[0][1], neg, pos)
                    print(f"# one whole prompt of {len(pre_ids) + len(rests[0][1])} tokens: "
                          f"{time.time() - t2:.2f} s", file=sys.stderr)
                    return 0
                if a.no_cache:
                    scores = np.array([logodds(model, p + r, neg, pos) for p, r in rests])
                else:
                    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
                    scores = logodds_cached(model, pre_ids, [r for _, r in rests], neg, pos, pad)
                n_tokens += [len(p) + len(r) for p, r in rests[:len(rows)]]
                lo[rows] = scores[:len(rows)]
                cf[rows] = scores[len(rows):].mean()
            seconds = time.time() - t1
            for cal in CALIBRATIONS:
                z = calibrate(lo, cf, cal)
                correct = ((z > 0).astype(int) == yq).astype(float)
                acc = wilson(correct)
                row: dict[str, Any] = {
                    "model": a.model, "task": a.task, "template": fmt.template, "words": list(fmt.words),
                    "space": fmt.space and fmt.chat == "none", "chat": fmt.chat, "order": order if k else "-",
                    "k": k, "demos": demos if k else "-", "calibration": cal, "n": len(queries),
                    "acc": acc[0], "acc_ci": [acc[1], acc[2]],
                    "positive_share": float((z > 0).mean()),
                    "label_tokens": [nneg, npos], "mean_tokens": float(np.mean(n_tokens)),
                    "prompts_per_s": (len(queries) + len(chunks) * len(CONTENT_FREE)) / seconds,
                }
                if k == 0:
                    zero[cal] = correct
                elif cal in zero:
                    row["minus_zero_shot"] = list(paired_diff(correct, zero[cal], a.seed))
                if demos == "weak" and k:
                    row["weak_label_acc"] = float(weak_correct.mean())
                    row["minus_weak_labels"] = list(paired_diff(correct, weak_correct, a.seed))
                results.append(row)
                print(table_row(row), flush=True)
                if a.out:
                    with open(a.out, "a") as f:
                        f.write(json.dumps(row) + "\n")
    return 0


def table_row(r: dict[str, Any]) -> str:
    def iv(x: Optional[list[float]]) -> str:
        return "" if x is None else f"{x[0]:+.3f} [{x[1]:+.3f}, {x[2]:+.3f}]"

    words = ("␣" if r["space"] else "") + "/".join(r["words"])
    return (f"| {r['model']} | {r['task']} | {r['template']} | {words} | {r['chat']} | {r['order']} | "
            f"{r['k']} | {r['demos']} | {r['calibration']} | {r['acc']:.3f} [{r['acc_ci'][0]:.3f}, "
            f"{r['acc_ci'][1]:.3f}] | {iv(r.get('minus_zero_shot'))} | {iv(r.get('minus_weak_labels'))} | "
            f"{r['positive_share']:.2f} | {r['prompts_per_s']:.1f} |")


if __name__ == "__main__":
    sys.exit(main())
