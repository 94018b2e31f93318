"""The NLP datasets of Burns et al. (2023, Table 1) that `hf.py` does not already load, as
binary tasks, through `datasets` (online) or a local copy (`task.source`).

Binarisation follows the paper's recipe: a multiple-choice question becomes two examples, the
question with its correct answer and with one wrong answer drawn with the task's seed (so the
classes balance by construction; `binarize_choices`), or, with `binarize=coin`, one example
whose label is a seeded coin flip (what openai/weak-to-strong and EleutherAI/w2s do); a
comparison of two texts becomes a pairwise example whose order is drawn with the seed (half the
pairs put the better text first); datasets that are already binary keep their labels and are
balanced by downsampling the majority class with the seed (`balance`). Rows that share a
question share a group, so they never straddle two splits; MultiRC and MC-TACO can group by
passage instead (`group=passage`), so no passage sits in two splits.

Sources. The hub ids, subsets, splits and column names are taken from each dataset's card
(`dataset_info` / features); docs/scale.md lists them with their row counts and which were not
checked against the hub from here (this machine has no network). Seven of these datasets keep a
loading script on their `main` branch, which `datasets>=4` no longer runs: DREAM, the four
ETHICS sets and MC-TACO read the hub's parquet export (`revision=refs/convert/parquet`;
ETHICS's subsets are directories there, so `data_dir=<subset>`; in that export ETHICS's
`validation` split is the original test.csv and `test` is test_hard.csv), PIQA reads
ybisk/piqa's export and Social IQa reads lighteval/siqa, a parquet copy of allenai/social_i_qa
(its label is a string, "1".."3"). A source file must have the hub schema: nested columns
(lists, `choices: {text, label}`) need .jsonl or .parquet, not .csv.

Which dataset is Burns et al.'s "Twitter Sentiment" is not certain (we could not read their
Table 1's citation here); `twitter_sentiment` uses TweetEval's sentiment subset (negative /
neutral / positive), positive vs negative, neutral dropped, or with `dataset=eleuther` the
binary EleutherAI/twitter-sentiment that EleutherAI/w2s uses. How they binarised FLAN ANLI R2
is not stated in what we could read either; `anli_r2` asks the three-option question FLAN asks
("yes" / "it is not possible to tell" / "no") and binarises it like every multiple choice, or
with `form=entailment` asks entailment vs not (label 1 for entailment), as EleutherAI/w2s does.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Literal, Optional

from . import Example, balance, text_id
from .files import parse_label
from .hf import BINARIZE, PARQUET, Binarize, Hub, Option, Rows, _s, _single, _task, _unique, choice_examples

NLI_OPTIONS = ("yes", "it is not possible to tell", "no")  # ANLI labels 0, 1, 2
NLI_QUESTION = "Does the premise entail the hypothesis?"
Group = Literal["question", "passage"]
GROUP: Option = ("group", Group, "question")


def _int(value: Any) -> int | None:
    """An integer label, or None for an unlabelled row ('' / None / negative, as test splits
    have them)."""
    try:
        v = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return v if v >= 0 else None


def _grouped(prefix: str, group: str, text: str, label: int, pair: str | None = None) -> list[Example]:
    """One example that shares its group (a question, a passage) with others."""
    return [Example(text_id(prefix, text, pair or ""), text, label, text_id(prefix, group), pair)]


Getter = Callable[[dict[str, Any]], Optional[tuple[str, list[str], Optional[int], Optional[str]]]]


def _mc(prefix: str, rows: Rows, rng: random.Random, get: Getter, binarize: Binarize) -> list[Example]:
    """Multiple choice: `get(row)` -> (question, choices, correct index, question id or None),
    or None to skip the row."""
    out = []
    for r in rows:
        item = get(r)
        if item is None:
            continue
        question, choices, correct, qid = item
        if correct is None or not 0 <= correct < len(choices):
            continue
        out.append(choice_examples(prefix, question, choices, correct, rng,
                                   qid=f"{prefix}:{qid}" if qid else None, binarize=binarize))
    return _unique(out)


def _binary(rows_examples: list[list[Example]], rng: random.Random) -> list[Example]:
    return balance(_unique(rows_examples), rng)


# ------------------------------------------------------------------------- multiple choice


def _dream(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        choices = [_s(c) for c in r["choice"] or []]
        answer = _s(r["answer"])
        if answer not in choices:
            return None
        dialogue = "\n".join(_s(t) for t in r["dialogue"] or [])
        return f"{dialogue}\n{_s(r['question'])}", choices, choices.index(answer), None

    return _mc("dream", rows, rng, get, binarize)


def _hellaswag(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        context = f"{_s(r['activity_label'])}: {_s(r['ctx'])}" if _s(r.get("activity_label")) else _s(r["ctx"])
        return context, [_s(e) for e in r["endings"] or []], _int(r["label"]), None

    return _mc("hellaswag", rows, rng, get, binarize)


def _openbookqa(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        keys = list(r["choices"]["label"])
        key = _s(r["answerKey"])
        return (_s(r["question_stem"]), [_s(t) for t in r["choices"]["text"]],
                keys.index(key) if key in keys else None, _s(r.get("id")))

    return _mc("openbookqa", rows, rng, get, binarize)


def _quail(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        return (f"{_s(r['context'])}\n{_s(r['question'])}", [_s(a) for a in r["answers"] or []],
                _int(r["correct_answer_id"]), _s(r.get("id")))

    return _mc("quail", rows, rng, get, binarize)


def _piqa(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    return _mc("piqa", rows, rng, lambda r: (_s(r["goal"]), [_s(r["sol1"]), _s(r["sol2"])],
                                             _int(r["label"]), None), binarize)


def _quartz(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        keys = list(r["choices"]["label"])
        key = _s(r["answerKey"])
        return (f"{_s(r['para'])}\n{_s(r['question'])}", [_s(t) for t in r["choices"]["text"]],
                keys.index(key) if key in keys else None, _s(r.get("id")))

    return _mc("quartz", rows, rng, get, binarize)


def _social_i_qa(rows: Rows, rng: random.Random, *, binarize: Binarize) -> list[Example]:
    def get(r):
        label = _int(r["label"])  # "1" / "2" / "3" on the hub (a string)
        return (f"{_s(r['context'])}\n{_s(r['question'])}",
                [_s(r[k]) for k in ("answerA", "answerB", "answerC")],
                None if label is None else label - 1, None)

    return _mc("social_i_qa", rows, rng, get, binarize)


def _anli(rows: Rows, rng: random.Random, *, form: Literal["three_option", "entailment"],
          binarize: Binarize) -> list[Example]:
    """`three_option`: FLAN's question with its three answers, binarised (`binarize`);
    `entailment`: one example per row, label 1 when the premise entails the hypothesis (ANLI
    label 0), balanced by downsampling (`binarize` does not apply)."""
    def question(r):
        return f"Premise: {_s(r['premise'])}\nHypothesis: {_s(r['hypothesis'])}\n{NLI_QUESTION}"

    if form == "entailment":
        return _binary([_single("anli_r2", question(r), int(_int(r["label"]) == 0))
                        for r in rows if _int(r["label"]) is not None], rng)
    return _mc("anli_r2", rows, rng, lambda r: (question(r), list(NLI_OPTIONS), _int(r["label"]),
                                                _s(r.get("uid"))), binarize)


# ------------------------------------------------------------------ binary (balanced here)


def _cola(rows: Rows, rng: random.Random) -> list[Example]:
    return _binary([_single("glue_cola", _s(r["sentence"]), parse_label(r["label"], "glue_cola label"))
                    for r in rows if _int(r["label"]) is not None], rng)


def _sst2(rows: Rows, rng: random.Random) -> list[Example]:
    return _binary([_single("glue_sst2", _s(r["sentence"]), parse_label(r["label"], "glue_sst2 label"))
                    for r in rows if _int(r["label"]) is not None], rng)


def _paws(rows: Rows, rng: random.Random) -> list[Example]:
    return _binary([_single("paws", _s(r["sentence1"]), parse_label(r["label"], "paws label"),
                            _s(r["sentence2"])) for r in rows], rng)


def _wic(rows: Rows, rng: random.Random) -> list[Example]:
    return _binary([_single("wic", f"{_s(r['sentence1'])}\n{_s(r['sentence2'])}",
                            parse_label(r["label"], "wic label"),
                            f'Is "{_s(r["word"])}" used with the same meaning in both sentences?')
                    for r in rows if _int(r["label"]) is not None], rng)


def _candidates(prefix: str, rows: Rows, rng: random.Random, passage: str, group: Group) -> list[Example]:
    """(passage, question + candidate answer) -> is the answer right? The candidates of one
    question share its group (`group=question`), or all questions on one passage share the
    passage's (`group=passage`), so no passage sits in two splits."""
    def key(p: str, q: str) -> str:
        return p if group == "passage" else f"{p}\x1f{q}"

    return _binary([_grouped(prefix, key(_s(r[passage]), _s(r["question"])), _s(r[passage]),
                             parse_label(r["label"], f"{prefix} label"),
                             f"{_s(r['question'])}\n{_s(r['answer'])}")
                    for r in rows if _int(r["label"]) is not None], rng)


def _multirc(rows: Rows, rng: random.Random, *, group: Group) -> list[Example]:
    """(paragraph, question + candidate answer) -> is the candidate answer correct?"""
    return _candidates("multirc", rows, rng, "paragraph", group)


def _mc_taco(rows: Rows, rng: random.Random, *, group: Group) -> list[Example]:
    """(sentence, question + candidate answer) -> is the answer plausible?"""
    return _candidates("mc_taco", rows, rng, "sentence", group)


Twitter = Literal["tweet_eval", "eleuther"]
TWITTER = {"tweet_eval": Hub("cardiffnlp/tweet_eval", "sentiment"),
           "eleuther": Hub("EleutherAI/twitter-sentiment")}


def _twitter(rows: Rows, rng: random.Random, *, dataset: Twitter) -> list[Example]:
    """TweetEval sentiment: 0 negative, 1 neutral (dropped), 2 positive; EleutherAI's
    twitter-sentiment is binary already (0 negative, 1 positive)."""
    if dataset == "eleuther":
        return _binary([_single("twitter_sentiment", _s(r["text"]),
                                parse_label(r["label"], "twitter-sentiment label"))
                        for r in rows if _int(r["label"]) is not None], rng)
    return _binary([_single("twitter_sentiment", _s(r["text"]), int(_int(r["label"]) == 2))
                    for r in rows if _int(r["label"]) in (0, 2)], rng)


def _ethics_justice(rows: Rows, rng: random.Random) -> list[Example]:
    return _binary([_single("ethics_justice", _s(r["scenario"]), parse_label(r["label"], "ethics label"))
                    for r in rows], rng)


def _ethics_deontology(rows: Rows, rng: random.Random) -> list[Example]:
    """(scenario, excuse) -> is the excuse reasonable? The excuses of one scenario share a group."""
    return _binary([_grouped("ethics_deontology", _s(r["scenario"]), _s(r["scenario"]),
                             parse_label(r["label"], "ethics label"), _s(r["excuse"])) for r in rows], rng)


def _ethics_virtue(rows: Rows, rng: random.Random) -> list[Example]:
    """The hub's scenario is "<sentence> [SEP] <trait>": (sentence, trait) -> does the person in
    it show the trait? The traits of one sentence share a group."""
    out = []
    for r in rows:
        sentence, sep, trait = _s(r["scenario"]).rpartition("[SEP]")
        if not sep:
            continue
        out.append(_grouped("ethics_virtue", sentence.strip(), sentence.strip(),
                            parse_label(r["label"], "ethics label"), trait.strip()))
    return _binary(out, rng)


def _ethics_utilitarianism(rows: Rows, rng: random.Random) -> list[Example]:
    """Pairwise: the hub's `baseline` is the more pleasant of the two scenarios. (scenario A,
    scenario B) -> is A the more pleasant? Exactly half the pairs, drawn with the seed, put the
    baseline first."""
    pairs = list(dict.fromkeys((_s(r["baseline"]), _s(r["less_pleasant"])) for r in rows))
    pairs = [(a, b) for a, b in pairs if a and b and a != b]
    firsts = [i % 2 for i in range(len(pairs))]
    rng.shuffle(firsts)
    out = []
    for (better, worse), first in zip(pairs, firsts):
        a, b = (better, worse) if first else (worse, better)
        out.append(_grouped("ethics_utilitarianism", f"{better}\x1f{worse}", f"Scenario A: {a}",
                            first, f"Scenario B: {b}\nIs scenario A more pleasant than scenario B?"))
    return _unique(out)


# ----------------------------------------------------------------------- registration


def _ethics(subset: str) -> Hub:
    """hendrycks/ethics's main branch is a loading script; its parquet export keeps each subset
    in a directory of that name."""
    return Hub("hendrycks/ethics", revision=PARQUET, data_dir=subset,
               alternative=f"task.hub_id=EleutherAI/hendrycks_ethics task.revision={PARQUET} "
                           f"task.data_dir={subset} has train and test only")


# (name, hub source, default split, fields, converter, description, the task's own options)
BURNS_TASKS: tuple[tuple[str, Any, str, tuple[str, ...], Callable[..., list[Example]], str,
                         tuple[Option, ...]], ...] = (
    ("dream", Hub("dataset-org/dream", revision=PARQUET, data_dir="plain_text"), "train",
     ("dialogue", "question", "choice", "answer"), _dream,
     "DREAM dialogue reading comprehension, 3 choices binarised", (BINARIZE,)),
    ("ethics_justice", _ethics("justice"), "train", ("label", "scenario"),
     _ethics_justice, "ETHICS justice: is the claim reasonable? (balanced)", ()),
    ("ethics_deontology", _ethics("deontology"), "train", ("label", "scenario", "excuse"),
     _ethics_deontology, "ETHICS deontology: (request, excuse) -> reasonable? (balanced)", ()),
    ("ethics_virtue", _ethics("virtue"), "train", ("label", "scenario"),
     _ethics_virtue, "ETHICS virtue: (sentence, trait) -> does the trait fit? (balanced)", ()),
    ("ethics_utilitarianism", _ethics("utilitarianism"), "train", ("baseline", "less_pleasant"),
     _ethics_utilitarianism, "ETHICS utilitarianism, pairwise: is scenario A the more pleasant?", ()),
    ("anli_r2", Hub("facebook/anli"), "train_r2", ("premise", "hypothesis", "label"), _anli,
     "ANLI round 2: FLAN's 3-option NLI question binarised, or entailment vs not",
     (("form", Literal["three_option", "entailment"], "three_option"), BINARIZE)),
    ("glue_cola", Hub("nyu-mll/glue", "cola"), "train", ("sentence", "label"),
     _cola, "GLUE CoLA: is the sentence grammatical? (balanced)", ()),
    ("glue_sst2", Hub("nyu-mll/glue", "sst2"), "train", ("sentence", "label"),
     _sst2, "GLUE SST-2 movie-review sentences: positive? (balanced)", ()),
    ("hellaswag", Hub("Rowan/hellaswag"), "train", ("ctx", "endings", "label"),
     _hellaswag, "HellaSwag sentence completion, 4 endings binarised", (BINARIZE,)),
    ("mc_taco", Hub("CogComp/mc_taco", revision=PARQUET), "validation",
     ("sentence", "question", "answer", "label"), _mc_taco,
     "MC-TACO temporal commonsense: is the answer plausible? (balanced; validation split)", (GROUP,)),
    ("openbookqa", Hub("allenai/openbookqa", "main"), "train", ("question_stem", "choices", "answerKey"),
     _openbookqa, "OpenBookQA science questions, 4 choices binarised", (BINARIZE,)),
    ("paws", Hub("google-research-datasets/paws", "labeled_final"), "train",
     ("sentence1", "sentence2", "label"), _paws, "PAWS: are the two sentences paraphrases? (balanced)", ()),
    ("quail", Hub("textmachinelab/quail"), "train", ("context", "question", "answers", "correct_answer_id"),
     _quail, "QuAIL reading comprehension, 4 choices binarised", (BINARIZE,)),
    ("piqa", Hub("ybisk/piqa", revision=PARQUET,
                 alternative="the copy lm-evaluation-harness reads: task.hub_id=baber/piqa"), "train",
     ("goal", "sol1", "sol2", "label"), _piqa,
     "PIQA physical commonsense: (goal, solution) -> right solution?", (BINARIZE,)),
    ("quartz", Hub("allenai/quartz"), "train", ("para", "question", "choices", "answerKey"),
     _quartz, "QuaRTz qualitative relations, 2 choices binarised", (BINARIZE,)),
    ("social_i_qa", Hub("lighteval/siqa", alternative=f"task.hub_id=allenai/social_i_qa task.revision={PARQUET}"),
     "train", ("context", "question", "answerA", "answerB", "answerC", "label"), _social_i_qa,
     "Social IQa (the full hub dataset; `social_iqa` is BIG-bench's), 3 choices binarised", (BINARIZE,)),
    ("multirc", Hub("aps/super_glue", "multirc"), "train", ("paragraph", "question", "answer", "label"),
     _multirc, "SuperGLUE MultiRC: is the candidate answer correct? (balanced)", (GROUP,)),
    ("wic", Hub("aps/super_glue", "wic"), "train", ("word", "sentence1", "sentence2", "label"),
     _wic, "SuperGLUE WiC: same word sense in both sentences? (balanced)", ()),
    ("twitter_sentiment", lambda o: TWITTER[o["dataset"]], "train", ("text", "label"), _twitter,
     "Twitter sentiment, positive vs negative: TweetEval (neutral dropped) or EleutherAI's (balanced)",
     (("dataset", Twitter, "tweet_eval"),)),
)

for _name, _hub, _split, _fields, _convert, _description, _options in BURNS_TASKS:
    _task(_name, _hub, _fields, _convert, _description, split=_split, options=_options)
