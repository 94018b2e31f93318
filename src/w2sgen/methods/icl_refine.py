"""`icl_refine`: the strong causal LM re-derives the labels in context (Somerstep et al.).

Refinement, for classification: the weakly labelled transfer split is cut into batches; for
each query, the other examples of its batch, shown with their *weak* labels, are the in-context
demonstrations; the LM scores the two label words after the query, and that soft label replaces
the weak one. The student (the configured strong model, trained with the run's mode and loss)
then learns from the refined labels. The query's own weak label never enters its prompt.

Options (all keyword-only, from the config as `method.<name>`):
- `lm`: the causal LM that refines: `strong` (the run's strong model, as in the paper) or any
  model name. An encoder strong model needs `lm` set, e.g. `smollm2-135m`, and then the
  refiner and the student are different models - say so when reporting. Online, `lm` can be
  an OpenAI-compatible endpoint: `{name: openai, base_url: http://host:8000/v1, model: NAME,
  api_key_env: VAR, api: completions|chat, top_logprobs: 20}` (also `timeout`, `retries`,
  `backoff`, `concurrency`). Prompts are sent as text and scored from the server's top
  log-probabilities of the next token (lm.EndpointLM); the server must return them
  (vLLM does, `transformers serve` does not). The report counts prompts where a label word was
  missing from the top list (`endpoint_bounded`) or both were (`endpoint_unscored`).
- `k` demonstrations per prompt (default 4; the paper used batches of 4-5); `k=0` is zero-shot
  relabelling by the refiner alone (no weak labels in any prompt: the control a refinement gain
  is measured against).
- `demos`: the labels the demonstrations show: `weak` (default, refinement) or `true` - the same
  demonstration examples, drawn the same way, shown with their ground-truth labels (an oracle
  control: what the refiner does with correct demonstrations; it reads transfer's ground truth,
  so it is not a weak-to-strong method). Needs k >= 1.
- `batch`: `loo` (default) shuffles transfer into batches of k+1 and leaves the query out of
  its own batch; `fixed` cuts transfer into chunks of `chunk` queries that share k
  demonstrations drawn from outside the chunk - cheaper, since the shared prefix (instruction
  and demonstrations) is computed once per chunk (see lm/local.py).
- `balance`: build batches / demonstration sets with equal numbers of each weak hard label.
- `instruction`, `words` (negative, positive), `template` (with `{text}`, ending in `{label}`):
  override the task's prompt (TaskSpec.prompt).
- `calibrate`: `prior` (default) shifts the log-odds so that the refined labels have the same
  share of positives as the weak labels (small LMs lean towards one label word; the shift uses
  no ground truth); `none` keeps the raw label-word probabilities.
- `eval_size` (default 500): on this many test examples, measure the refining LM's own prompting
  accuracy - zero-shot, k-shot with ground-truth demonstrations, k-shot with weak demonstrations
  (the "unaltered strong model" of the paper's stricter bar) - next to the student's accuracy on
  the same examples. Prompting results are calibrated the same way (to the weak labels' share).
  The examples are drawn from test by the seed alone, and the demonstration set from transfer,
  so every variant of one seed (k weak, k true) is scored on the same examples with the same
  demonstrations; each setting's per-example correctness is recorded (`prompting.correct`) for
  the report's bootstrap over datasets (report/refinement.py).
- `precision` (`auto` default: bf16 where native, else fp32; `bf16`, `fp32`), `prompt_batch` (prompts per forward pass).

Refused in one line before the refiner's weights load: label words that are not one token each
for the refiner (lm/tokens.py; the tokenizer is loaded to check), a prompt longer than the
refiner's context (`max_position_embeddings`), and a k the transfer split cannot give every query
(`loo`: k + 1 > transfer; `fixed`: k > transfer minus a chunk).

Reported: weak and refined label accuracy on transfer (ground truth used for the report only),
how many labels refinement flipped and how many flips were right, prompts per second, and the
prompting baselines with bootstrap intervals. Refined labels and prompting scores are cached in
the store, keyed by everything they depend on.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from typing import Annotated, Any, Literal, Optional, Union

import numpy as np

from .. import progress
from ..endpoint import ENDPOINT_FORM, Client, check_endpoint
from ..errors import W2SError
from ..hardware import resolve_precision
from ..lm import EndpointLM, LanguageModel, LocalLM
from ..metrics import mean_ci
from ..models import local_ref, resolve
from ..options import Canon, Check, Ge, PositiveInt
from ..prompting import PromptFormat, example_text, sigmoid
from ..spec import stable_hash
from ..splits import labels
from ..tasks import TASKS, task_component
from . import METHODS, Arrays, ModelName, Setting, checked_by

prompt_text = example_text  # an example as one prompt input (benchmarks import this name)


def loo_batches(hard: np.ndarray, k: int, balance: bool, rng: np.random.Generator) -> list[np.ndarray]:
    """Index batches of size k+1 covering every example once (the last batches may be one
    larger, so no batch is too small to give its queries k demonstrations). With `balance`,
    each batch alternates the two weak classes as long as both last."""
    n = len(hard)
    if balance:
        pools = [list(rng.permutation(np.flatnonzero(hard == c))) for c in (0, 1)]
        picked: list[int] = []
        c = int(rng.integers(2))
        while pools[0] or pools[1]:
            c = c if pools[c] else 1 - c
            picked.append(pools[c].pop())
            c = 1 - c
        order = np.array(picked, dtype=int)
    else:
        order = rng.permutation(n)
    size = k + 1
    count = max(1, n // size)
    return [b for b in np.array_split(order, count)]


def pick_demos(pool: np.ndarray, hard: np.ndarray, k: int, balance: bool,
               rng: np.random.Generator) -> np.ndarray:
    """k indices from `pool` (balanced over weak classes when asked), in a shuffled order."""
    if k > len(pool):
        raise W2SError(f"icl_refine: k={k} demonstrations but only {len(pool)} examples to draw from")
    if not balance:
        return rng.choice(pool, size=k, replace=False)
    by_class = [rng.permutation(pool[hard[pool] == c]) for c in (0, 1)]
    half = [k // 2 + (k % 2) * int(rng.integers(2)), 0]
    half[1] = k - half[0]
    for c in (0, 1):  # a class that runs short is filled from the other
        if len(by_class[c]) < half[c]:
            half[1 - c] += half[c] - len(by_class[c])
            half[c] = len(by_class[c])
    chosen = np.concatenate([by_class[0][:half[0]], by_class[1][:half[1]]]).astype(int)
    return rng.permutation(chosen)


def calibrated(logodds: np.ndarray, positive_share: float, how: str) -> np.ndarray:
    """Soft labels from log-odds; `prior` moves the threshold to the `positive_share` quantile."""
    if how == "none":
        return sigmoid(logodds)
    share = min(max(positive_share, 1.0 / len(logodds)), 1 - 1.0 / len(logodds))
    return sigmoid(logodds - np.quantile(logodds, 1 - share))


class Refiner:
    """The refining LM of one run and its prompt format. Prompt blocks (instruction,
    demonstrations, queries) are the LM's own (token ids for a local LM, text for an endpoint);
    `loo` and `shared` build prompts from them the same way for both, and the LM scores the
    label words (a local LM computes a shared prefix once)."""

    def __init__(self, lm: LanguageModel, fmt: PromptFormat):
        self.lm, self.fmt, self.name = lm, fmt, lm.name
        lm.check_words(fmt.words, fmt.tail)  # before any weights load
        self.start = lm.join([lm.start, *lm.blocks(fmt.head_blocks())])

    def demos(self, texts: Sequence[str], labels: Union[Sequence[int], np.ndarray]) -> list:
        return self.lm.blocks([self.fmt.demo(t, y) for t, y in zip(texts, labels)])

    def queries(self, texts: Sequence[str]) -> list:
        return self.lm.blocks([self.fmt.query(t) for t in texts])

    def join(self, blocks: Sequence[Any]) -> Any:
        return self.lm.join(blocks)

    def score(self, prefix: Any, continuations: list, progress: Any) -> np.ndarray:
        return self.lm.label_logodds(prefix, continuations, self.fmt.words, progress,
                                     context=self.fmt.tail)

    def report(self) -> dict[str, Any]:
        return self.lm.report()

    def loo(self, texts: Sequence[str], shown: np.ndarray, batches: list[np.ndarray],
            progress: Any) -> np.ndarray:
        """Each query after the other members of its batch (demonstrations with the labels
        `shown`: weak, or true for the oracle control)."""
        demos, queries = self.demos(texts, shown), self.queries(texts)
        prompts, rows = [], []
        for b in batches:
            for i in b:
                prompts.append(self.join([demos[j] for j in b if j != i] + [queries[i]]))
                rows.append(i)
        out = np.empty(len(texts))
        out[np.array(rows, dtype=int)] = self.score(self.start, prompts, progress)
        return out

    def shared(self, demo_texts: Sequence[str], demo_labels: Sequence[int],
               query_texts: Sequence[str], progress: Any) -> np.ndarray:
        """Queries after one shared set of demonstrations (a local LM computes it once)."""
        prefix = self.join([self.start, *self.demos(demo_texts, demo_labels)])
        return self.score(prefix, self.queries(query_texts), progress)


def refiner_factory(lm: Any, s: Setting, fmt: PromptFormat, precision: str,
                    prompt_batch: int) -> tuple[str, str, Any]:
    """(name, cache identity, a function building the Refiner on first use) for `method.lm`:
    `strong`, a model name, or an endpoint mapping `{name: openai, base_url, model, ...}`
    (checked by the option's type when the config was built)."""
    if isinstance(lm, dict):
        opts = {k: v for k, v in lm.items() if k not in ("name", "api", "top_logprobs")}
        api, top = lm.get("api", "completions"), lm.get("top_logprobs", 20)
        try:
            client = Client(where="method.lm", **opts)
        except TypeError as e:
            raise W2SError(f"method.lm: {e}") from None
        endpoint = EndpointLM(client, api, top)  # checks api and top_logprobs
        endpoint.check_words(fmt.words)
        return client.name, f"{client.identity}:{api}:{top}", lambda: Refiner(endpoint, fmt)
    ref = s.strong_ref if lm == "strong" else resolve(lm)
    if ref.kind != "causal":
        raise W2SError(f"icl_refine prompts a causal LM, but {ref.name!r} is an encoder; set "
                       "strong_model to a causal LM or method.lm=smollm2-135m")
    return ref.name, ref.identity, lambda: Refiner(
        LocalLM(ref, s.ctx.cfg.torch_device(), precision, batch_size=prompt_batch), fmt)


def strong_lm_is_causal(cfg: Any) -> None:
    """When a config is built (`w2s run`, `w2s sweep --dry-run`), before anything trains:
    `lm: strong`, the default, needs a causal strong model (checked where the model is on this
    machine; otherwise when the run resolves it)."""
    if cfg.method.options.get("lm", "strong") != "strong":
        return
    ref = local_ref(cfg.strong_model)
    if ref is not None and ref.kind != "causal":
        raise W2SError(f"icl_refine prompts a causal LM, but strong_model {ref.name!r} is an "
                       "encoder and method.lm is not set; set method.lm=smollm2-135m (or an "
                       "endpoint mapping), or a causal strong_model")


def check_k(k: int, n: int, batch: str, chunk: int) -> None:
    """Refuse a k the transfer split cannot give every query (before anything is loaded)."""
    if batch == "loo" and k + 1 > n:
        raise W2SError(f"icl_refine: method.k={k} needs leave-one-out batches of {k + 1} "
                       f"examples, but transfer has {n}; set method.k to at most {n - 1}")
    if batch == "fixed" and k > n - min(chunk, n):
        raise W2SError(f"icl_refine: method.k={k} demonstrations must come from outside each "
                       f"chunk of {min(chunk, n)} queries, but transfer has only {n} examples; "
                       f"lower method.k or method.chunk")


def prompt_format(s: Setting, instruction: Optional[str], words: Optional[list],
                  template: Optional[str]) -> PromptFormat:
    spec = TASKS.get(task_component(s.ctx.cfg.task).name)
    default_instruction, default_words = spec.prompt
    negative, positive = (w.strip() for w in (words or default_words))  # two: LabelWords checks
    return PromptFormat(default_instruction if instruction is None else instruction,
                        (negative, positive),
                        template or PromptFormat.template)


Endpoint = Annotated[dict, Check(lambda d: check_endpoint(d, "method.lm") is None, ENDPOINT_FORM)]
# `true` reads as a YAML boolean (`demos: true`): it means the string, and `false` is refused
DemoLabels = Annotated[Union[Literal["weak", "true"], bool],
                       Check(lambda v: v is not False, "'weak' or 'true'"),
                       Canon(lambda v: "true" if v is True else v)]
LabelWords = Annotated[list[Annotated[str, Check(str.strip, "a non-blank word")]],
                      Check(lambda w: len(w) == 2, "two label words [negative, positive]")]


@METHODS.register("icl_refine")
@checked_by(strong_lm_is_causal)
def icl_refine(s: Setting, *, lm: Union[Literal["strong"], ModelName, Endpoint] = "strong", k: Annotated[int, Ge(0)] = 4,
               batch: Literal["loo", "fixed"] = "loo", balance: bool = False,
               chunk: PositiveInt = 64, instruction: Optional[str] = None,
               words: Optional[LabelWords] = None, template: Optional[str] = None,
               demos: DemoLabels = "weak",
               calibrate: Literal["prior", "none"] = "prior", eval_size: Annotated[int, Ge(0)] = 500,
               precision: Literal["auto", "bf16", "fp32", "fp16"] = "auto",
               prompt_batch: PositiveInt = 16) -> tuple[Arrays, dict[str, Any]]:
    precision = resolve_precision(precision, s.ctx.cfg.torch_device(), "method.precision")
    check_k(k, len(s.splits.transfer), batch, chunk)
    demos = "true" if demos in ("true", True) else "weak"
    if demos == "true" and not k:
        raise W2SError("icl_refine: method.demos=true shows ground-truth labels on demonstrations, "
                       "but method.k=0 shows none; set method.k to 1 or more, or leave demos out")
    fmt = prompt_format(s, instruction, words, template)
    lm_name, lm_identity, build = refiner_factory(lm, s, fmt, precision, prompt_batch)
    cfg = s.ctx.cfg
    transfer = s.splits.transfer
    weak = np.asarray(s.weak_labels, dtype=np.float64)
    hard = (weak > 0.5).astype(int)
    # what the demonstrations show; which examples they are is drawn from the weak labels either way
    shown = labels(transfer).astype(int) if demos == "true" else hard
    share = float(hard.mean())
    texts = [example_text(e) for e in transfer]
    refiner: list[Refiner] = []

    def get_refiner() -> Refiner:
        if not refiner:
            refiner.append(build())
        return refiner[0]

    base_key = {"lm": lm_identity, "format": [fmt.instruction, list(fmt.words), fmt.template],
                "precision": precision, "version": 1}
    key = {**base_key, "k": k, "batch": batch, "balance": bool(balance),
           "chunk": chunk if batch == "fixed" else None, "seed": cfg.seed,
           "examples": hashlib.sha256("\x1e".join(e.id for e in transfer).encode()).hexdigest()[:24],
           "texts": stable_hash(texts, 24), "weak": stable_hash(hard.tolist(), 24)}
    if demos == "true":  # absent for weak demonstrations: the keys cached before this option
        key["demos"] = stable_hash(shown.tolist(), 24)

    def refine() -> dict[str, np.ndarray]:
        r = get_refiner()
        rng = np.random.default_rng(cfg.seed)
        t0 = time.perf_counter()
        with progress.bar(len(texts), f"icl refine {lm_name} k={k}", "prompt",
                          quiet=s.ctx.quiet) as bar:
            if batch == "loo":
                lo = r.loo(texts, shown, loo_batches(hard, k, balance, rng), bar)
            else:
                lo = np.empty(len(texts))
                for start in range(0, len(texts), chunk):
                    rows = np.arange(start, min(start + chunk, len(texts)))
                    pool = np.setdiff1d(np.arange(len(texts)), rows)
                    d = pick_demos(pool, hard, k, balance, rng)
                    lo[rows] = r.shared([texts[i] for i in d], shown[d], [texts[i] for i in rows], bar)
        seconds = time.perf_counter() - t0
        return {"logodds": lo, "seconds": np.array(seconds)}

    label = f"icl refine ({lm_name}, k={k}, {batch}{', true demos' if demos == 'true' else ''})"
    arrays, hit = s.ctx.cached(label, "icl_refine", key, refine)
    refined = calibrated(arrays["logodds"], share, calibrate).astype(np.float32)
    seconds = float(arrays["seconds"])

    student = s.train_student(refined)
    report: dict[str, Any] = {
        "lm": lm_name, "k": k, "demos": demos, "batch": batch, "balance": bool(balance),
        "calibrate": calibrate,
        "weak_label_accuracy": s.label_accuracy(weak),
        "refined_label_accuracy": s.label_accuracy(refined),
        "raw_refined_label_accuracy": s.label_accuracy(sigmoid(arrays["logodds"])),
        "refined_agrees_with_weak": float(((refined > 0.5) == hard).mean()),
        "prompts_per_second": (len(texts) / seconds) if seconds > 0 else None,
        "refine_seconds": seconds, "cached": bool(hit),
    }
    y_transfer = labels(transfer)
    flipped = (refined > 0.5) != hard
    report["flips"] = int(flipped.sum())
    report["flips_correct"] = int(((refined > 0.5) == y_transfer)[flipped].sum())
    if eval_size:
        report["prompting"] = _prompting_baselines(s, get_refiner, base_key, k, balance, share,
                                                   calibrate, eval_size, student, hard, texts)
    if refiner:
        report.update(refiner[0].report())
    return student, report


def _prompting_baselines(s: Setting, get_refiner: Any, base_key: dict, k: int, balance: bool,
                         share: float, how: str, eval_size: int, student: Arrays,
                         hard: np.ndarray, transfer_texts: list[str]) -> dict[str, Any]:
    """The refining LM prompted on test: zero-shot, and k-shot with one demonstration set drawn
    from transfer, shown once with ground-truth and once with weak labels."""
    cfg = s.ctx.cfg
    test = s.splits.test
    rng = np.random.default_rng(cfg.seed + 1)
    n = min(eval_size, len(test))
    rows = np.sort(rng.choice(len(test), size=n, replace=False))
    demo_idx = pick_demos(np.arange(len(hard)), hard, max(k, 1), balance, rng) if k else np.array([], int)
    y_transfer = labels(s.splits.transfer)
    queries = [example_text(test[i]) for i in rows]
    key = {**base_key, "k": k, "rows": stable_hash(rows.tolist(), 24),
           "test": hashlib.sha256("\x1e".join(test[i].id for i in rows).encode()).hexdigest()[:24],
           "demos": stable_hash([transfer_texts[i] for i in demo_idx], 24),
           "demo_labels": stable_hash([hard[demo_idx].tolist(), y_transfer[demo_idx].tolist()], 24)}

    def score() -> dict[str, np.ndarray]:
        r = get_refiner()
        settings: dict[str, tuple[Union[Sequence[int], np.ndarray], Union[Sequence[int], np.ndarray]]] = {
            "zero_shot": ([], [])}
        if k:
            settings["fewshot_ground_truth"] = (demo_idx, y_transfer[demo_idx])
            settings["fewshot_weak"] = (demo_idx, hard[demo_idx])
        out = {}
        with progress.bar(n * len(settings), "prompting baselines", "prompt",
                          quiet=s.ctx.quiet) as bar:
            for name, (d, y) in settings.items():
                out[name] = r.shared([transfer_texts[i] for i in d], list(y), queries, bar)
        return out

    arrays, _ = s.ctx.cached("prompting baselines", "icl_prompting", key, score)
    y = labels(test)[rows]

    def ci(values: np.ndarray) -> list[float]:  # with the run's own bootstrap settings
        out = mean_ci(values, cfg.seed, cfg.eval.bootstrap, cfg.eval.confidence)
        assert out is not None
        return out

    result: dict[str, Any] = {"n": int(n), "demonstrations": int(len(demo_idx))}
    correct: dict[str, str] = {}  # per evaluated example, "1" right / "0" wrong (the report's bootstrap)
    for name, lo in arrays.items():
        p = calibrated(lo, share, how)
        right = ((p > 0.5) == y).astype(float)
        result[name] = ci(right)
        correct[name] = "".join("1" if v else "0" for v in right)
    result["correct"] = correct
    student_correct = ((student["p_test"][rows] > 0.5) == y).astype(float)
    result["student"] = ci(student_correct)
    if "fewshot_weak" in arrays:
        # The paper's stricter bar: is the student worse than the unaltered strong model
        # (prompted with the same weak demonstrations)? Paired bootstrap of the difference.
        base = (calibrated(arrays["fewshot_weak"], share, how) > 0.5) == y
        diff = ci(student_correct - base.astype(float))
        result["student_minus_fewshot_weak"] = diff
        result["student_worse_than_unaltered"] = bool(diff[2] < 0)
    return result
