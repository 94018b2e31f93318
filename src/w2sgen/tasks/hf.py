"""Hugging Face hub tasks (online), read with `datasets.load_dataset`.

Every task takes `split`, `seed`, `max_examples` (the first N rows, before conversion) and
`source`: a local copy in the hub's schema (.jsonl/.json/.csv/.parquet, read as its only
split, so `split` is ignored), which is how these tasks run offline.

Where the rows come from is the task's `Hub` source; the options `hub_id`, `subset` (the
dataset's config, `load_dataset`'s `name`), `revision`, `data_dir` and `data_files` replace
parts of it. Naming another `hub_id` drops the default source's subset, revision and data
directory, which belong to that repository.

`datasets` >= 4 no longer runs loading scripts, and several of these datasets were published as
one on their repository's `main` branch. Those tasks read the hub's automatic parquet export
(`revision="refs/convert/parquet"`, one directory per subset, one per split inside) or a
parquet copy on another repository; docs/scale.md lists every source and its row counts.

Multiple-choice tasks take `binarize`: `pair` (Burns et al.'s recipe, the default) makes two
examples of a question, its right answer and one wrong answer drawn with the seed; `coin`
makes one, as openai/weak-to-strong and EleutherAI/w2s do: a seeded coin flip says whether the
question is shown with its right answer (label 1) or with a wrong answer drawn with the seed
(label 0).
"""
from __future__ import annotations

import inspect
import os
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Optional, Union

from ..errors import W2SError
from . import TASKS, Comparison, Example, TaskSpec, binarize_choices, comparison_examples, text_id
from .files import parse_label

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
ASSISTANT = "\n\nAssistant:"
PARQUET = "refs/convert/parquet"  # the hub's automatic parquet export of a dataset repository
SCRIPTS_GONE = "Dataset scripts are no longer supported"  # what datasets >= 4 raises for one

Rows = Iterable[dict[str, Any]]
DataFiles = Union[str, list[str], dict]
Binarize = Literal["pair", "coin"]
Identical = Literal["error", "drop"]  # a comparison whose two responses are the same


@dataclass(frozen=True)
class Hub:
    """Where a task's rows live: `load_dataset(id, subset, revision=..., data_dir=...,
    data_files=...)`. `alternative` names another source in words, for error messages."""

    id: str
    subset: Optional[str] = None
    revision: Optional[str] = None
    data_dir: Optional[str] = None
    data_files: Optional[DataFiles] = None
    alternative: str = ""

    def with_options(self, hub_id: Optional[str], subset: Optional[str], revision: Optional[str],
                     data_dir: Optional[str], data_files: Optional[DataFiles]) -> Hub:
        base = self if hub_id in (None, self.id) else Hub(str(hub_id))
        return replace(base, subset=base.subset if subset is None else subset,
                       revision=base.revision if revision is None else revision,
                       data_dir=base.data_dir if data_dir is None else data_dir,
                       data_files=base.data_files if data_files is None else data_files)

    def describe(self) -> str:
        parts = [f"subset {self.subset}"] if self.subset else []
        parts += [f"{k} {v}" for k, v in (("revision", self.revision), ("data_dir", self.data_dir),
                                         ("data_files", self.data_files)) if v]
        return f"{self.id} ({', '.join(parts)})" if parts else self.id


def _reason(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__


def hub_error(hub: Hub, split: str, e: Exception) -> str:
    """What went wrong loading `hub`, and what to set: one line."""
    import datasets

    where, why = hub.describe(), _reason(e)
    also = f" ({hub.alternative})" if hub.alternative else ""
    if isinstance(e, RuntimeError) and SCRIPTS_GONE in str(e):
        export = f"task.revision={PARQUET}" + (f" task.data_dir={hub.subset}" if hub.subset else "")
        return (f"{where} is published as a loading script, which datasets {datasets.__version__} "
                f"no longer runs; read the hub's parquet export instead ({export}), or another "
                f"parquet copy with task.hub_id=...{also}, or a local copy with task.source=<file>")
    if isinstance(e, (ValueError, KeyError)) and "split" in str(e).lower():
        return f"{where} has no split {split!r} ({why}); set task.split=..."
    if type(e).__name__ == "DatasetNotFoundError":
        return (f"{where} is not on the Hugging Face hub or cannot be accessed ({why}); check "
                f"task.hub_id and task.revision{also}, or pass task.source=<local file>")
    if isinstance(e, FileNotFoundError) and (hub.data_dir or hub.data_files or hub.revision):
        return (f"{where} has no data files there ({why}); check task.data_dir / task.data_files "
                f"/ task.revision{also}, or pass task.source=<local file>")
    if getattr(datasets.config, "HF_HUB_OFFLINE", False) or getattr(datasets.config, "HF_DATASETS_OFFLINE", False):
        return (f"could not load {where}: the hub is switched off here (HF_HUB_OFFLINE / "
                f"HF_DATASETS_OFFLINE; {why}); set HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 to "
                "download it, or pass task.source=<local file>")
    return (f"could not load {where} from the Hugging Face hub ({why}); check the network{also}, "
            "or pass task.source=<local file> or use an offline task (w2s tasks)")


def _rows(hub: Hub, split: str, source: Optional[str], max_examples: Optional[int],
          fields: tuple[str, ...]) -> Rows:
    """The dataset's rows (the first `max_examples`), from the hub or a local `source` file."""
    try:
        import datasets
    except ImportError:
        raise W2SError("the Hugging Face tasks need the `datasets` package; "
                       "run `pip install datasets`") from None
    if max_examples is not None and (not isinstance(max_examples, int) or max_examples < 1):
        raise W2SError(f"task.max_examples must be a positive integer, got {max_examples!r}")
    if source is not None:
        path = os.path.expanduser(str(source))
        where = repr(path)
        fmt = FORMATS.get(os.path.splitext(path)[1].lower())
        if fmt is None:
            raise W2SError(f"task.source {where}: use a {'/'.join(FORMATS)} file")
        if not os.path.isfile(path):
            raise W2SError(f"task.source {where} not found")
        try:
            ds = datasets.load_dataset(fmt, data_files=path, split="train")
        except Exception as e:
            raise W2SError(f"could not read task.source {where} ({_reason(e)})") from None
    else:
        where = hub.describe()
        try:
            ds = datasets.load_dataset(hub.id, hub.subset, split=split, revision=hub.revision,
                                       data_dir=hub.data_dir, data_files=hub.data_files)
        except Exception as e:
            raise W2SError(hub_error(hub, split, e)) from None
    missing = [f for f in fields if f not in ds.column_names]
    if missing:
        raise W2SError(f"{where} lacks field(s) {', '.join(missing)} (has: "
                       f"{', '.join(ds.column_names) or 'none'}); {hub.id} rows need "
                       f"{', '.join(fields)}")
    if max_examples is not None and max_examples < len(ds):
        ds = ds.select(range(max_examples))
    return ds


def _s(value: Any) -> str:
    """A text field; empty cells (None in CSV/parquet) read as ''."""
    return "" if value is None else str(value).strip()


def _unique(per_row: Iterable[list[Example]]) -> list[Example]:
    """The rows' examples in order, dropping a row whose ids were already seen (a repeated
    text or question), so ids stay unique and question pairs stay whole."""
    out: list[Example] = []
    seen: set[str] = set()
    for exs in per_row:
        ids = {e.id for e in exs}
        if not ids & seen:
            seen |= ids
            out += exs
    return out


def _single(name: str, text: str, label: int, pair: Optional[str] = None) -> list[Example]:
    """One example, its own group, id from its content."""
    eid = text_id(name, text, pair or "")
    return [Example(eid, text, label, eid, pair)]


def choice_examples(prefix: str, question: str, choices: Sequence[str], correct: int,
                    rng: random.Random, qid: Optional[str] = None, binarize: Binarize = "pair",
                    negative_only: bool = False) -> list[Example]:
    """A multiple-choice question as binary examples (question + candidate -> correct?), all in
    the question's group. `pair`: the right candidate and one wrong one drawn with `rng`
    (`binarize_choices`); `coin`: one example, right (label 1) or wrong (label 0) by a coin
    flip drawn with `rng`, then the wrong candidate drawn with it. `negative_only`: only a wrong
    candidate, label 0, no coin drawn (openai's cosmos_qa handling of "None of the above")."""
    if binarize == "pair" and not negative_only:
        return binarize_choices(prefix, question, choices, correct, rng, qid=qid)
    wrong = [i for i in range(len(choices)) if i != correct and choices[i] != choices[correct]]
    if not wrong:
        return []
    label = 0 if negative_only else int(rng.random() < 0.5)
    i = correct if label else rng.choice(wrong)
    group = qid or text_id(prefix, question, *choices)
    return [Example(f"{group}/{i}", question, label, group, choices[i])]


# -------------------------------------------------------------- row -> examples converters


def _sciq(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    return _unique(choice_examples(
        "sciq", _s(r["question"]),
        [_s(r[k]) for k in ("correct_answer", "distractor1", "distractor2", "distractor3")],
        0, rng, binarize=binarize) for r in rows)


NONE_OF_THE_ABOVE = "none of the above choices"  # Cosmos QA's answer "None of the above choices ."


def _cosmos_qa(rows: Rows, rng: random.Random, *, binarize: Binarize,
               none_of_the_above: Literal["keep", "negative"]) -> list[Example]:
    """The hub's test split is unlabelled (label -1): such rows are skipped. `none_of_the_above
    = negative` is openai/weak-to-strong's handling: a question whose right answer is "None of
    the above choices ." (meaningless shown alone) gives only a wrong answer, label 0."""
    def get(r: dict[str, Any]) -> list[Example]:
        choices = [_s(r[f"answer{i}"]) for i in range(4)]
        correct = int(r["label"])
        nota = none_of_the_above == "negative" and NONE_OF_THE_ABOVE in choices[correct].lower()
        return choice_examples("cosmos_qa", f"{_s(r['context'])}\n{_s(r['question'])}", choices,
                               correct, rng, qid=f"cosmos_qa:{r['id']}" if _s(r.get("id")) else None,
                               binarize=binarize, negative_only=nota)

    return _unique(get(r) for r in rows if r["label"] is not None and 0 <= int(r["label"]) < 4)


def _boolq(rows: Rows, rng: random.Random) -> list[Example]:
    return _unique(_single("boolq", _s(r["passage"]), parse_label(r["answer"], "boolq answer"),
                           _s(r["question"])) for r in rows)


def _amazon_polarity(rows: Rows, rng: random.Random) -> list[Example]:
    def text(r: dict[str, Any]) -> str:
        return f"{_s(r['title'])}. {_s(r['content'])}" if _s(r["title"]) else _s(r["content"])

    return _unique(_single("amazon_polarity", text(r),
                           parse_label(r["label"], "amazon_polarity label")) for r in rows)


def split_dialogue(chosen: str, rejected: str) -> Optional[tuple[str, str, str]]:
    """(prompt, chosen reply, rejected reply): the dialogue before the last Assistant turn the
    two share, and what each says from there; None when they share no Assistant turn."""
    cut = chosen.rfind(ASSISTANT, 0, len(os.path.commonprefix([chosen, rejected])))
    if cut < 0:
        return None
    start = cut + len(ASSISTANT)
    return chosen[:cut].strip(), chosen[start:].strip(), rejected[start:].strip()


def _anthropic_hh(rows: Rows, rng: random.Random, *, identical: Identical) -> list[Example]:
    """Pairwise (`comparison_examples`): (prompt, A, B) -> is A the chosen reply? A row lacking
    `chosen` or `rejected` is an error; so is one whose two replies are the same (unless
    identical=drop); a row whose two dialogues share no Assistant turn is skipped."""
    def comparisons() -> Iterable[Comparison]:
        for n, r in enumerate(rows, 1):
            chosen, rejected = _s(r["chosen"]), _s(r["rejected"])
            where = f"anthropic_hh row {n}"
            if not chosen or not rejected:
                yield Comparison(where, "", chosen, rejected)
                continue
            parts = split_dialogue(chosen, rejected)
            if parts is not None:
                yield Comparison(where, *parts)

    return comparison_examples("anthropic_hh", comparisons(), rng, identical)


# ----------------------------------------------------------------------- registration

Option = tuple[str, Any, Any]  # (name, annotation, default): one of a task's own options
BINARIZE: Option = ("binarize", Binarize, "pair")
IDENTICAL: Option = ("identical", Identical, "error")

_KW = inspect.Parameter.KEYWORD_ONLY


def _hub_options(split: str) -> list[Option]:
    return [("split", str, split), ("seed", int, 0), ("max_examples", Optional[int], None),
            ("source", Optional[str], None), ("hub_id", Optional[str], None),
            ("subset", Optional[str], None), ("revision", Optional[str], None),
            ("data_dir", Optional[str], None), ("data_files", Optional[DataFiles], None)]


def _task(name: str, hub: Union[Hub, Callable[[dict[str, Any]], Hub]], fields: tuple[str, ...],
          convert: Callable[..., list[Example]], description: str, *, split: str = "train",
          options: Sequence[Option] = ()) -> None:
    """Register a hub task. Its options, the hub options plus the task's own `options` (passed
    to `convert` as keywords), are the keyword-only parameters of its load function's signature,
    where the config builder reads and checks them. `hub` may depend on the task's own options."""
    params = [inspect.Parameter(n, _KW, default=d, annotation=a) for n, a, d in [*_hub_options(split), *options]]
    signature = inspect.Signature(params)
    own = [n for n, _, _ in options]

    def load(**kwargs: Any) -> list[Example]:
        opts = signature.bind(**kwargs)
        opts.apply_defaults()
        o = opts.arguments
        task_opts = {k: o[k] for k in own}
        base = hub(task_opts) if callable(hub) else hub
        where = base.with_options(o["hub_id"], o["subset"], o["revision"], o["data_dir"], o["data_files"])
        rows = _rows(where, o["split"], o["source"], o["max_examples"], fields)
        return convert(rows, random.Random(o["seed"]), **task_opts)

    load.__signature__ = signature  # type: ignore[attr-defined]
    load.__annotations__ = {p.name: p.annotation for p in params}
    load.__kwdefaults__ = {p.name: p.default for p in params}
    shown = hub.describe() if isinstance(hub, Hub) else "by option"
    load.__doc__ = f"{description} (hub: {shown}; offline: task.source=<local copy>)"
    load.__name__ = load.__qualname__ = f"load_{name}"
    TASKS.add(name, TaskSpec(load, "hf", description, None, ("online",)))


_task("sciq", Hub("allenai/sciq"),
      ("question", "correct_answer", "distractor1", "distractor2", "distractor3"), _sciq,
      "SciQ science questions, 4 choices binarised (question, answer) -> correct?", options=[BINARIZE])
_task("boolq", Hub("google/boolq"), ("question", "answer", "passage"), _boolq,
      "BoolQ: (passage, yes/no question) -> is the answer yes?")
# allenai/cosmos_qa's main branch is a loading script; its parquet export has one subset
_task("cosmos_qa", Hub("allenai/cosmos_qa", revision=PARQUET,
                       alternative="a parquet copy: task.hub_id=Samsoup/cosmos_qa task.revision=main"),
      ("context", "question", "answer0", "answer1", "answer2", "answer3", "label"), _cosmos_qa,
      "Cosmos QA commonsense reading comprehension, 4 choices binarised",
      options=[BINARIZE, ("none_of_the_above", Literal["keep", "negative"], "keep")])
_task("amazon_polarity", Hub("fancyzhx/amazon_polarity"), ("label", "title", "content"),
      _amazon_polarity, "Amazon reviews: positive vs negative")
_task("anthropic_hh", Hub("Anthropic/hh-rlhf"), ("chosen", "rejected"), _anthropic_hh,
      "Anthropic HH-RLHF pairs: is response A the preferred one? (reward modelling)", options=[IDENTICAL])
