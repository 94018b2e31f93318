"""BIG-bench tasks, read from the `bigbench==1.0.0` source distribution without its API.

`w2s pull bigbench` downloads the sdist (pip, no dependencies) into the data home and
extracts the task files of the registered tasks in one pass. Other BIG-bench tasks can be read
with the generic `bigbench` task (`task: {name: bigbench, path: <folder>, positive: <answer>}`),
extracted from the archive on first use.
"""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any, Optional

from ..errors import MissingAsset, W2SError
from ..paths import home
from . import TASKS, Example, TaskSpec, balance, binarize_choices, dedupe, pairwise_example, text_id

VERSION = "1.0.0"
# of the sdist as PyPI served it on 2026-12-02: pip pins the version, this pins the bytes
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
MEMBER_PREFIX = f"bigbench-{VERSION}/bigbench/benchmark_tasks/"

# task folder inside benchmark_tasks/ -> registered name
FOLDERS = {
    "multiemo_pos_neg": "multiemo/all_sentence_en",
    "fever": "fact_checker/fever",
    "sports_understanding": "sports_understanding",
    "strategyqa": "strategyqa",
    "winowhy": "winowhy",
    "epistemic_reasoning": "epistemic_reasoning",
    "social_iqa": "social_iqa",
    "elementary_math_qa": "elementary_math_qa/question_only",
    "checkmate_in_one": "checkmate_in_one",
    "hhh_alignment": "hhh_alignment",
}
HHH_PARTS = ("harmless", "helpful", "honest", "other")


def data_dir() -> Path:
    return home() / "bigbench" / VERSION


def sdist_path() -> Path:
    return data_dir() / f"bigbench-{VERSION}.tar.gz"


def installed() -> bool:
    return sdist_path().is_file()


def read_task_json(folder: str) -> dict[str, Any]:
    """The task.json of one BIG-bench folder, from the extracted cache or the archive."""
    cached = data_dir() / "tasks" / folder / "task.json"
    if not cached.is_file():
        if not installed():
            raise MissingAsset("the BIG-bench data package (bigbench==1.0.0)", "bigbench")
        extract([folder])
        if not cached.is_file():
            raise W2SError(f"BIG-bench has no task folder {folder!r} (look under "
                           f"bigbench/benchmark_tasks/ in the archive)")
    return json.loads(cached.read_text())


def extract(folders: list[str]) -> None:
    """Extract `<folder>/task.json` for each folder in one pass over the archive."""
    wanted = {MEMBER_PREFIX + f + "/task.json": f for f in folders}
    out = data_dir() / "tasks"
    with tarfile.open(sdist_path()) as tf:
        for member in tf:
            folder = wanted.get(member.name)
            if folder is None:
                continue
            target = out / folder / "task.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            src = tf.extractfile(member)
            if src is None:  # not a regular file (a directory or link)
                raise W2SError(f"bigbench: {member.name} in {sdist_path()} is not a regular file")
            tmp.write_bytes(src.read())
            tmp.replace(target)


def pull() -> None:
    data_dir().mkdir(parents=True, exist_ok=True)
    if not installed():
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               f"bigbench=={VERSION}", "-d", str(data_dir())]
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        digest = hashlib.sha256(sdist_path().read_bytes()).hexdigest()
        if digest != SDIST_SHA256:
            sdist_path().unlink()
            raise W2SError(f"bigbench: the bigbench=={VERSION} sdist has sha256 {digest[:12]}..., "
                           f"pinned {SDIST_SHA256[:12]}...; run `w2s pull bigbench` again (if it "
                           "fails again, the package on PyPI changed: do not use it)")
    else:
        print(f"bigbench: already downloaded at {sdist_path()}")
    folders = [f for f in FOLDERS.values() if f != "hhh_alignment"]
    folders += [f"hhh_alignment/{p}" for p in HHH_PARTS]
    missing = [f for f in folders if not (data_dir() / "tasks" / f / "task.json").is_file()]
    if missing:
        extract(missing)


# ---------------------------------------------------------------------- conversion


def _winner(scores: dict[str, float]) -> str:
    return max(scores, key=lambda k: scores[k])


def two_way(name: str, folder: str, positive: str, seed: int, balanced: bool) -> list[Example]:
    """Tasks whose target_scores name two answers: label 1 when `positive` scores highest."""
    rows = read_task_json(folder)["examples"]
    answers = {k for r in rows for k in r["target_scores"]}
    if positive not in answers:
        raise W2SError(f"task {name!r}: positive answer {positive!r} is not among {sorted(answers)}")
    examples = dedupe(Example(text_id(name, r["input"]), r["input"],
                              int(_winner(r["target_scores"]) == positive))
                      for r in rows)
    return balance(examples, random.Random(seed)) if balanced else examples


def choices(name: str, folder: str, seed: int) -> list[Example]:
    """Multiple-choice tasks, binarised (question, candidate) -> correct?."""
    rng = random.Random(seed)
    out: list[Example] = []
    seen: set[str] = set()
    for r in read_task_json(folder)["examples"]:
        cands = list(r["target_scores"])
        correct = cands.index(_winner(r["target_scores"]))
        exs = binarize_choices(name, r["input"].strip(), cands, correct, rng)
        if exs and exs[0].group not in seen:
            seen.add(exs[0].group)
            out.extend(exs)
    return out


def _two_way_task(name: str, positive: str, description: str,
                  prompt: tuple[str, tuple[str, str]]) -> None:
    folder = FOLDERS[name]

    def load(*, seed: int = 0, balanced: bool = True) -> list[Example]:
        return two_way(name, folder, positive, seed, balanced)

    TASKS.add(name, TaskSpec(load, "bigbench", description, "bigbench", prompt=prompt))


def _choice_task(name: str, description: str) -> None:
    folder = FOLDERS[name]

    def load(*, seed: int = 0) -> list[Example]:
        return choices(name, folder, seed)

    TASKS.add(name, TaskSpec(load, "bigbench", description, "bigbench"))


def _multiemo(*, seed: int = 0, balanced: bool = True) -> list[Example]:
    rows = read_task_json(FOLDERS["multiemo_pos_neg"])["examples"]
    rows = [r for r in rows if _winner(r["target_scores"]) in ("positive", "negative")]
    examples = dedupe(Example(text_id("multiemo", r["input"]), r["input"],
                              int(_winner(r["target_scores"]) == "positive")) for r in rows)
    return balance(examples, random.Random(seed)) if balanced else examples


def _checkmate(*, seed: int = 0) -> list[Example]:
    """Chess puzzles: (game so far, candidate move) -> is it the mate? Wrong candidates are the
    targets of other puzzles, since the task gives one answer per puzzle."""
    rng = random.Random(seed)
    rows = read_task_json(FOLDERS["checkmate_in_one"])["examples"]
    targets = sorted({r["target"] for r in rows})
    out: list[Example] = []
    for r in rows:
        wrong = rng.choice([t for t in targets if t != r["target"]])
        out += binarize_choices("checkmate", r["input"], [r["target"], wrong], 0, rng)
    return dedupe(out)


def _hhh(*, seed: int = 0) -> list[Example]:
    """HHH alignment as a pairwise comparison: (prompt, response A, response B) -> is A the
    better response? The order of the pair is drawn with the seed, so classes balance."""
    rng = random.Random(seed)
    out: list[Example] = []
    for part in HHH_PARTS:
        for r in read_task_json(f"hhh_alignment/{part}")["examples"]:
            best = _winner(r["target_scores"])
            for other in r["target_scores"]:
                if other == best:
                    continue
                a_first = rng.random() < 0.5
                a, b = (best, other) if a_first else (other, best)
                out.append(pairwise_example("hhh", r["input"], a, b, int(a_first)))
    return dedupe(out)


def _generic(*, path: str, positive: Optional[str] = None, seed: int = 0,
             balanced: bool = True) -> list[Example]:
    """Any BIG-bench folder: two-answer tasks need `positive`; others are binarised as
    multiple choice."""
    if positive is not None:
        return two_way(f"bigbench/{path}", path, positive, seed, balanced)
    return choices(f"bigbench/{path}", path, seed)


TASKS.add("multiemo_pos_neg", TaskSpec(
    _multiemo, "bigbench", "MultiEmo English sentences, positive vs negative sentiment",
    "bigbench", ("default",),
    ("Is the sentiment of each sentence positive or negative?", ("negative", "positive"))))
_two_way_task("fever", "true", "FEVER claims (fact_checker/fever): true vs false",
              ("Is each claim true or false?", ("false", "true")))
_two_way_task("sports_understanding", "plausible", "sports sentences: plausible vs implausible",
              ("Is each sentence about sports plausible or implausible?", ("implausible", "plausible")))
_two_way_task("strategyqa", "Yes", "StrategyQA yes/no questions needing implicit reasoning",
              ("Answer each question with yes or no.", ("no", "yes")))
_two_way_task("winowhy", "correct", "WinoWhy: is the reason given for a Winograd answer right?",
              ("Is the reason given for each answer correct? Answer yes or no.", ("no", "yes")))
_two_way_task("epistemic_reasoning", "entailment", "premise/hypothesis about beliefs: entailment?",
              ("Does each premise entail its hypothesis? Answer yes or no.", ("no", "yes")))
_choice_task("social_iqa", "Social IQa, 3 choices binarised (question, answer) -> correct?")
_choice_task("elementary_math_qa", "MathQA word problems, 5 choices binarised")
TASKS.add("checkmate_in_one", TaskSpec(
    _checkmate, "bigbench", "chess: (game, move) -> is it mate in one? (stand-in for Burns' chess)",
    "bigbench"))
TASKS.add("hhh_alignment", TaskSpec(
    _hhh, "bigbench", "Anthropic HHH pairs: is response A better than B? (reward-model stand-in)",
    "bigbench"))
TASKS.add("bigbench", TaskSpec(
    _generic, "bigbench", "any BIG-bench folder: task.path=<folder> [task.positive=<answer>]",
    "bigbench"))
