"""BIG-bench tasks, read from the `bigbench==1.0.0` source distribution without its API.

BIG-bench is an optional asset: nothing in the default path needs it. The package index no
longer serves the 1.0.0 sdist that these tasks read (it lists only 0.0.1), so `w2s pull
bigbench` tries the index and then says how to supply the file by hand: `w2s pull bigbench
--from bigbench-1.0.0.tar.gz`, checked against the sha256 pinned here. The task files of the
registered tasks are extracted from the archive on first use.

Tasks from a checkout of the original repository (google/BIG-bench) load without the archive
through the generic task: `task: {name: bigbench, path: <folder holding task.json>}` with a
local folder; such a file is not hash-pinned, and its content goes into the task's identity
like any user file.
"""
from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path
from typing import Any, Optional

from ..errors import MissingAsset, W2SError
from ..fetch import Asset, File, register
from ..fetch_sources import Package, PyPI
from ..paths import home
from . import TASKS, Example, TaskSpec, balance, binarize_choices, dedupe, pairwise_example, text_id

VERSION = "1.0.0"
SDIST = f"bigbench-{VERSION}.tar.gz"
# of the sdist as the index served it until 2026-12: pip pins the version, this pins the bytes
SDIST_SHA256 = "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
MEMBER_PREFIX = f"bigbench-{VERSION}/bigbench/benchmark_tasks/"
ASSET = register(Asset(
    "bigbench", f"the BIG-bench task data (bigbench=={VERSION} sdist)",
    (File(SDIST, 0, SDIST_SHA256),),
    (PyPI((Package("bigbench", VERSION, SDIST_SHA256, sdist=True),)),),
    licence="Apache-2.0 code; per-task data licences not stated", optional=True,
    origin=f"bigbench={VERSION} on the package index (gone from it since 2026-12: supply the "
           "file with --from); upstream: google/BIG-bench"))

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
    return home() / "bigbench" / f"{VERSION}-{ASSET.digest[:12]}"


def sdist_path() -> Path:
    return ASSET.folder / SDIST


def installed() -> bool:
    return ASSET.installed()


def read_task_json(folder: str) -> dict[str, Any]:
    """The task.json of one BIG-bench folder: a local folder (or task.json) on disk, else the
    folder of that name in the archive (extracted once)."""
    local = Path(folder).expanduser()
    if local.is_dir() and (local / "task.json").is_file():
        local = local / "task.json"
    if local.is_file() and local.name.endswith(".json"):
        try:
            return json.loads(local.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise W2SError(f"BIG-bench task file {str(local)!r} is not readable JSON ({e}); give "
                           "a task.json in BIG-bench's layout") from None
    cached = data_dir() / "tasks" / folder / "task.json"
    if not cached.is_file():
        if not installed():
            raise MissingAsset(ASSET.what, "bigbench")
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

    TASKS.add(name, TaskSpec(load, "bigbench", description, "bigbench", ("optional",), prompt=prompt))


def _choice_task(name: str, description: str) -> None:
    folder = FOLDERS[name]

    def load(*, seed: int = 0) -> list[Example]:
        return choices(name, folder, seed)

    TASKS.add(name, TaskSpec(load, "bigbench", description, "bigbench", ("optional",)))


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
    """Any BIG-bench task: `path` is a folder holding task.json (a checkout of the original
    repository) or a folder name inside the archive. Two-answer tasks need `positive`; others
    are binarised as multiple choice."""
    if positive is not None:
        return two_way(f"bigbench/{path}", path, positive, seed, balanced)
    return choices(f"bigbench/{path}", path, seed)


TASKS.add("multiemo_pos_neg", TaskSpec(
    _multiemo, "bigbench", "MultiEmo English sentences, positive vs negative sentiment",
    "bigbench", ("optional",),
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
