"""`w2s generate`: weak-to-strong alignment of a generative model, top to bottom.

  questions   task -> questions with ids -> train (weakly labelled) / eval (held out)
  step 1      weak answers: the weak model, prompted with the task's behaviour (e.g. a pirate
              persona), answers the train and the eval questions
  step 2      the unaltered strong model answers the eval questions (no behaviour prompt)
  step 3      per method: training targets for the train questions (naive = the weak answers,
              icl_refine, infer_and_respond, ask_to_improve; see methods.py)
  step 4      per method: the student = the strong model + LoRA fine-tuned on (question, target)
              (a local model), then it answers the eval questions with no system prompt; for an
              endpoint, the training file is written in chat-JSONL and the run stops there, unless
              `students.<method>` names the model tuned on it, which is then evaluated
  step 5      evaluation of weak, strong and every student on eval: the LLM judge's content and
              style scores, exact match (maths), the marker-rate proxy; each student's content
              against the unaltered strong model (the paper's bar: is the student worse?)

Every expensive step (answers, targets, adapters, student answers, judge scores) is cached in
the store under a hash of everything it depends on (model identity, the exact prompts, sampling
settings, training settings, seeds), so a rerun re-uses all of it, and adding a method computes
only what is new. The run (config, timings, metrics) goes to the store's runs table;
`w2s report` shows it.
"""
from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from .. import progress
from ..runs import Steps, recorded
from ..spec import Component, stable_hash
from ..store import Store, atomic_write
from . import scoring
from .backends import BACKENDS, Backend, Conversation, HFBackend, Sampling, user
from .config import GenerativeConfig
from .judge import judge, prompt
from .methods import GEN_METHODS, PROMPTS_VERSION, Inputs
from .sft import train_lora
from .tasks import GEN_TASKS, Behaviour, Question, split_questions

# 2: local generation runs the prompts' shared prefix once (lm.local); answers are the same in
# fp32 but round differently in bf16, so answers and judge scores of format 1 are not re-used
ANSWERS_FORMAT = 2
SFT_FORMAT = 1


class Backends:
    """One backend per distinct component, so a model used as weak, strong and judge loads once."""

    def __init__(self, device: str):
        self.device = device
        self._made: dict[str, Backend] = {}

    def get(self, comp: Component) -> Backend:
        key = stable_hash(asdict(comp))
        if key not in self._made:
            self._made[key] = BACKENDS.get(comp.name)(self.device, **comp.options)
        return self._made[key]


def questions_hash(questions: list[Question]) -> str:
    return stable_hash([[q.id, q.question, q.answer] for q in questions], 24)


def _texts(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=str)


class Run:
    """The cached steps of one run."""

    def __init__(self, cfg: GenerativeConfig, store: Store, quiet: bool):
        self.cfg, self.store, self.quiet = cfg, store, quiet
        self.steps = Steps(store, quiet)

    def progress(self, total: int, desc: str) -> Any:
        return progress.bar(total, desc, "answer", quiet=self.quiet, leave=False)

    def answers(self, label: str, backend: Backend, convs: list[Conversation], sampling: Sampling,
                identity: str | None = None, attach: Any = None) -> list[str]:
        """Answers of `backend` to `convs`, cached by the model's identity, the exact
        conversations and the sampling settings. `attach` is a context manager (a LoRA adapter)
        entered only when the answers must be computed."""
        key = {"format": ANSWERS_FORMAT, "backend": identity or backend.identity,
               "conversations": stable_hash(convs, 24), "sampling": sampling.key()}

        def compute() -> dict[str, np.ndarray]:
            t0 = time.perf_counter()
            with self.progress(len(convs), label) as bar:
                if attach is None:
                    out = backend.generate(convs, sampling, bar)
                else:
                    with attach():
                        out = backend.generate(convs, sampling, bar)
            return {"answers": _texts(out), "seconds": np.array(time.perf_counter() - t0)}

        arrays = self.steps.cached(label, "gen_answers", key, compute)
        assert len(arrays["answers"]) == len(convs), f"{label}: cached answers do not match the prompts"
        return [str(a) for a in arrays["answers"]]

    def targets(self, method: Component, strong: Backend, train: list[Question], weak: list[str],
                sampling: Sampling) -> tuple[list[str], dict[str, Any]]:
        key = {"version": PROMPTS_VERSION, "method": asdict(method), "strong": strong.identity,
               "questions": questions_hash(train), "weak": stable_hash(weak, 24),
               "sampling": sampling.key(), "seed": self.cfg.seed}

        def compute() -> dict[str, np.ndarray]:
            fn = GEN_METHODS.get(method.name)
            with self.progress(len(train), f"targets {method.name}") as bar:
                out, report = fn(Inputs(train, weak, strong, sampling, self.cfg.seed, bar), **method.options)
            if len(out) != len(train):
                raise AssertionError(f"method {method.name} made {len(out)} targets for {len(train)} questions")
            return {"targets": _texts(out), "report": np.array(json.dumps(report))}

        arrays = self.steps.cached(f"targets {method.name}", "gen_targets", key, compute)
        return [str(t) for t in arrays["targets"]], json.loads(str(arrays["report"]))

    def adapter(self, label: str, strong: HFBackend, convs: list[Conversation],
                targets: list[str]) -> tuple[dict[str, np.ndarray], str]:
        """The LoRA adapter fine-tuned on (convs -> targets), and a tag naming it."""
        ft = self.cfg.finetune
        key = {"format": SFT_FORMAT, "strong": strong.identity, "conversations": stable_hash(convs, 24),
               "targets": stable_hash(targets, 24), "finetune": asdict(ft), "seed": self.cfg.seed}

        def compute() -> dict[str, np.ndarray]:
            out = train_lora(strong, convs, targets, epochs=ft.epochs, lr=ft.lr,
                             batch_size=ft.batch_size, rank=ft.lora_rank, max_length=ft.max_length,
                             seed=self.cfg.seed, precision=ft.precision, desc=label)
            arrays = {f"lora__{k}": v for k, v in out["state"].items()}
            arrays.update(epoch_loss=np.array(out["epoch_loss"]), loss_before=np.array(out["loss_before"]),
                          loss_after=np.array(out["loss_after"]))
            return arrays

        arrays = self.steps.cached(label, "gen_adapter", key, compute)
        return arrays, self.store.cache_path("gen_adapter", key).stem

    def scores(self, label: str, backend: Backend, questions: list[Question], answers: list[str],
               behaviour: Behaviour) -> dict[str, np.ndarray]:
        j = self.cfg.judge
        p = prompt(j.prompt)
        key = {"format": ANSWERS_FORMAT, "judge": backend.identity, "prompt": p.version,
               "questions": questions_hash(questions), "answers": stable_hash(answers, 24),
               "style": behaviour.style, "samples": j.samples, "temperature": j.temperature,
               "max_new_tokens": j.max_new_tokens}

        def compute() -> dict[str, np.ndarray]:
            with self.progress(len(answers) * j.samples, label) as bar:
                return judge(backend, p, [q.question for q in questions], answers, behaviour.style,
                             [q.answer for q in questions], j.samples, j.temperature,
                             j.max_new_tokens, bar)

        arrays = self.steps.cached(label, "gen_judge", key, compute)
        return arrays


def export_training_file(store: Store, run_id: int, method: str, convs: list[Conversation],
                         targets: list[str]) -> str:
    """The standard chat fine-tuning format: one {"messages": [...]} per line."""
    path = store.root / "artifacts" / str(run_id) / f"train-{method}.jsonl"
    lines = [json.dumps({"messages": c + [{"role": "assistant", "content": t}]}) for c, t in zip(convs, targets)]
    atomic_write(path, lambda f: f.write("\n".join(lines) + "\n"), "w")
    return str(path)


AUTOMATIC = {"marker": "marker_rate", "exact_match": "exact_match", "reference": "reference_mention"}


def automatic_scores(answers: Sequence[str], references: Sequence[str | None], behaviour: Behaviour
                     ) -> dict[str, np.ndarray]:
    """Per-answer automatic scores (keys of AUTOMATIC): the marker proxy where the behaviour
    has markers, exact match where it is scored so, else the reference mention where any
    reference is short enough to check."""
    per: dict[str, np.ndarray] = {}
    if behaviour.markers:
        per["marker"] = np.array([scoring.has_marker(a, behaviour.markers) for a in answers], float)
    if behaviour.exact_match:
        per["exact_match"] = np.array([scoring.exact_match(a, r or "") for a, r in zip(answers, references)], float)
    else:
        mentions = np.array([scoring.mentions_reference(a, r) for a, r in zip(answers, references)])
        if not np.isnan(mentions).all():
            per["reference"] = mentions
    return per


def system_metrics(answers: list[str], questions: list[Question], behaviour: Behaviour,
                   judged: dict[str, np.ndarray] | None, seed: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Scores of one system on eval, and its per-question values (for paired comparisons)."""
    m: dict[str, Any] = {"n": len(answers), "mean_words": float(np.mean([len(a.split()) for a in answers]))}
    per = automatic_scores(answers, [q.answer for q in questions], behaviour)
    for key, values in per.items():
        m[AUTOMATIC[key]] = scoring.mean_ci(values, seed)
    if judged is not None:
        for score in ("content", "style"):
            s = judged[score]  # (questions, samples), NaN where a reply did not parse
            parsed = (~np.isnan(s)).sum(axis=1)
            per[score] = np.where(parsed > 0, np.nansum(s, axis=1) / np.maximum(parsed, 1), np.nan)
            m[score] = scoring.mean_ci(per[score], seed)
            m[f"{score}_missing"] = int(np.isnan(per[score]).sum())
            m[f"{score}_unparsed_samples"] = int(np.isnan(s).sum())
    return m, per


def run(cfg: GenerativeConfig, store: Store | None = None, quiet: bool = False) -> dict[str, Any]:
    cfg = cfg.resolved()  # precision auto -> what this machine computes fast, before recording
    store = store or Store(cfg.store)
    backends = Backends(cfg.torch_device())
    weak, strong = backends.get(cfg.weak), backends.get(cfg.strong)
    judge_backend = backends.get(cfg.judge.backend) if cfg.judge.samples else None
    task = GEN_TASKS.get(cfg.task.name)
    r = Run(cfg, store, quiet)
    with r.steps.step("questions"):  # read before the run is recorded: bad input records nothing
        questions, behaviour = task.load(**cfg.task.options)
        train, evalq = split_questions(questions, cfg.questions.train, cfg.questions.eval,
                                       cfg.questions.seed)
    with recorded(store, cfg, r.steps) as run_id:
        sampling = Sampling(cfg.generation.max_new_tokens, cfg.generation.temperature, cfg.seed)
        weak_train = r.answers("weak answers (train)", weak,
                               [user(q.question, behaviour.instruction) for q in train], sampling)
        eval_convs = [user(q.question) for q in evalq]
        answers = {"weak": r.answers("weak answers (eval)", weak,
                                     [user(q.question, behaviour.instruction) for q in evalq], sampling),
                   "strong": r.answers("strong answers (eval)", strong, eval_convs, sampling)}
        train_convs = [user(q.question) for q in train]
        methods: dict[str, Any] = {}
        for method in cfg.methods:
            targets, report = r.targets(method, strong, train, weak_train, sampling)
            info: dict[str, Any] = {"options": method.options, **report}
            if behaviour.markers:
                info["targets_marker_rate"] = scoring.marker_rate(targets, behaviour.markers)
            if behaviour.exact_match:
                info["targets_exact_match"] = float(np.mean([scoring.exact_match(t, q.answer or "")
                                                             for t, q in zip(targets, train)]))
            if isinstance(strong, HFBackend):
                arrays, tag = r.adapter(f"sft {method.name}", strong, train_convs, targets)
                state = {k[len("lora__"):]: v for k, v in arrays.items() if k.startswith("lora__")}
                info.update(sft_loss_before=float(arrays["loss_before"]), sft_loss_after=float(arrays["loss_after"]),
                            sft_epoch_loss=arrays["epoch_loss"].tolist())

                def attach(state: dict = state, tag: str = tag) -> Any:
                    return strong.adapter(state, cfg.finetune.lora_rank, tag)

                answers[f"student:{method.name}"] = r.answers(
                    f"student {method.name}", strong, eval_convs, sampling,
                    identity=f"{strong.identity}+lora:{tag}", attach=attach)
            else:
                info["training_file"] = export_training_file(store, run_id, method.name, train_convs, targets)
                if method.name in cfg.students:  # the model the user tuned on that file
                    tuned = backends.get(cfg.students[method.name])
                    answers[f"student:{method.name}"] = r.answers(f"student {method.name}", tuned,
                                                                  eval_convs, sampling)
                elif not quiet:
                    print(f"  {method.name}: strong model is an endpoint, so no fine-tuning here; "
                          f"training file written to {info['training_file']} (fine-tune with your "
                          "provider, then evaluate the tuned model as `strong`)", flush=True)
            methods[method.name] = info

        systems: dict[str, Any] = {}
        per: dict[str, dict[str, np.ndarray]] = {}
        for name, ans in answers.items():
            judged = r.scores(f"judge {name}", judge_backend, evalq, ans, behaviour) if judge_backend else None
            systems[name], per[name] = system_metrics(ans, evalq, behaviour, judged, cfg.seed)
        for name, system in systems.items():
            if name.startswith("student:"):
                system["vs_strong"] = {
                    k: scoring.paired_difference(per[name][k], per["strong"][k], cfg.seed)
                    for k in per[name]}
        metrics = {"kind": "generative", "task": cfg.task.name, "behaviour": behaviour.name,
                   "n_train": len(train), "n_eval": len(evalq),
                   "judge": ({"prompt": prompt(cfg.judge.prompt).version, "model": judge_backend.name,
                              "samples": cfg.judge.samples, "temperature": cfg.judge.temperature}
                             if judge_backend else None),
                   "weak_model": weak.name, "strong_model": strong.name,
                   "systems": systems, "methods": methods,
                   "weak_train_marker_rate": (scoring.marker_rate(weak_train, behaviour.markers)
                                              if behaviour.markers else None)}
        rows = [{"system": name, "id": q.id, "question": q.question, "reference": q.answer, "answer": a}
                for name, ans in answers.items() for q, a in zip(evalq, ans)]
        atomic_write(store.root / "artifacts" / str(run_id) / "answers.jsonl",
                     lambda f: f.write("".join(json.dumps(x) + "\n" for x in rows)), "w")
        store.finish_run(run_id, metrics, r.steps.timings)
    return {"run_id": run_id, "metrics": metrics, "timings": r.steps.timings, "config": cfg}
