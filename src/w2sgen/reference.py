"""The reference, generated from the code so that it cannot drift: every config key with its type
and default (from the config dataclasses; the words from KEY_DOCS), and every
method, loss and training mode with its options and defaults (from the registries and the
factories' signatures). `w2s config --keys`, `w2s methods`, `w2s losses` and `w2s modes` print
it; `w2s reference` writes it as docs/reference.md (a test checks the committed file is current).
"""
from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from . import options
from .config import ExperimentConfig, Overrides, TrainConfig
from .spec import Component


@dataclass
class Row:
    """One documented item: a config key, or an option of a component."""

    key: str
    type: str
    default: str
    doc: str = ""


# ------------------------------------------------------------------ config keys


# What each config key means, for a user (a test checks every key has its line here).
KEY_DOCS = {
    "name": "a name for the experiment, shown in the store; not part of its identity",
    "task": "the data: a task from `w2s tasks`, a .csv/.jsonl/.json file with text and label "
            "columns, or a folder in the testbed layout; options as task.<option>",
    "weak_model": "the weak supervisor: a name from `w2s models`, a local model folder or an "
                  "org/name hub id",
    "strong_model": "the strong model (ceiling and student), named as weak_model is",
    "seed": "seed of training (the split is seeded by splits.seed)",
    "splits.weak_train": "examples the weak supervisor trains on: a count, or a fraction in (0, 1)",
    "splits.transfer": "examples the weak supervisor labels for the student (and the ceiling "
                       "trains on with true labels)",
    "splits.test": "examples every model is scored on",
    "splits.seed": "seed of the split into weak_train / transfer / test",
    "features.max_length": "tokens read per example (longer texts are cut)",
    "features.batch_size": "examples per batch when features are computed",
    "features.precision": "precision of feature extraction; auto: bf16 where the device computes "
                          "it natively and fast, else fp32 (fp32 on CPUs)",
    "features.pooling": "how a text's token states become one vector; auto: mean for encoders, "
                        "the last token for causal LMs",
    "features.scope": "what one features pass covers: split (each split as cut) or task (every "
                      "example of the task once, re-used by runs on other split seeds); not part "
                      "of a run's identity",
    "train.mode": "how models learn: probe (a linear head on frozen features), full, lora, "
                  "last_k, label_tokens (`w2s modes`)",
    "train.epochs": "passes over the training examples",
    "train.lr": "learning rate; null: the mode's default (`w2s modes`)",
    "train.batch_size": "examples per optimiser step",
    "train.weight_decay": "AdamW weight decay",
    "train.warmup_fraction": "share of the steps with a linear warm-up (then cosine decay)",
    "train.lora_rank": "rank of the LoRA adapters (lora, label_tokens)",
    "train.last_k": "last_k (and label_tokens with adapter last_k): how many top transformer blocks train",
    "train.precision": "autocast precision of full / lora / last_k / label_tokens training; auto "
                       "as features.precision (a probe always trains in fp32)",
    "train.micro_batch_size": "split each batch into micro-batches of this size (gradient "
                              "accumulation, same numbers); null: the whole batch",
    "train.gradient_checkpointing": "recompute activations in the backward pass (less memory, "
                                    "same numbers)",
    "train.select": "which epoch a student keeps: last, or weak_val (best AUROC against the weak "
                    "labels of held-out transfer examples; no ground truth)",
    "train.select_size": "weak_val: held-out transfer examples, a count or a fraction",
    "train.label_words": "label_tokens: the [negative, positive] words, one token each; null: "
                         "the task's words",
    "train.instruction": "label_tokens: the prompt's instruction; null: the task's",
    "train.template": "label_tokens: the prompt, with {text} and ending in {label}; null: the "
                      "default template",
    "train.adapter": ("label_tokens: train LoRA adapters (lora), every weight (none), or the top "
                      "train.last_k blocks on cached hidden states (last_k)"),
    "train.lora_targets": "the modules LoRA adapts: all-linear, or a list of module names",
    "weak_train": "train.* keys for the weak supervisor only (e.g. {mode: probe}); null: it "
                  "trains as the strong models do",
    "method": "how the student is made from the weak labels (`w2s methods`); options as "
              "method.<option>",
    "loss": "what the student is trained with (`w2s losses`); options as loss.<option>",
    "eval.bootstrap": "bootstrap resamples of the test set behind every interval",
    "eval.confidence": "confidence of the intervals",
    "eval.pgr_baseline": "what reports measure PGR against: each seed's own weak and ceiling "
                         "(per_seed), or their means over seeds (fixed)",
    "eval.zero_shot": "a causal LM whose zero-shot test accuracy the run adds (metrics zero_shot): "
                      "the likelier response of a comparison, the likeliest candidate of a question",
    "store": "folder of the run store (results and the cache of every step)",
    "device": "auto (a GPU when torch sees one), cpu or cuda",
    "labels": "names a suite gave this cell's values (set by `w2s sweep`; reports show them)",
}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _text(value: Any) -> str:
    if isinstance(value, Component):
        return value.name if not value.options else f"{value.name} {value.options}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_keys(cls: type = ExperimentConfig, prefix: str = "") -> list[Row]:
    """Every key of the config, dotted (`train.epochs`), with its type, default and comment."""
    hints = typing.get_type_hints(cls, include_extras=True)
    rows = []
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], prefix + f.name
        default = _default(f)
        over = next((m for m in options.unwrap(tp)[1] if isinstance(m, Overrides)), None)
        if tp is not Component and isinstance(tp, type) and dataclasses.is_dataclass(tp):
            rows.extend(config_keys(tp, key + "."))
            continue
        if over is not None:
            kind = f"a mapping of {over.section}.* keys"
        elif tp is Component:
            kind = "a name, or {name: ..., <option>: value}"
        else:
            kind = options.describe(tp)
        rows.append(Row(key, kind, _text(default), KEY_DOCS.get(key, "")))
    return rows


# ------------------------------------------------------------------ components


def component_options(factory: Callable[..., Any]) -> list[Row]:
    """A component's options: its factory's keyword-only parameters."""
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
    except (NameError, TypeError):
        hints = {}
    rows = []
    for name, p in options.parameters(factory).items():
        default = "(required)" if p.default is inspect.Parameter.empty else _text(p.default)
        rows.append(Row(name, options.describe(hints.get(name, Any)), default))
    return rows


def summary(obj: Any) -> str:
    """The first sentence of the object's own docstring (a class's, not one it inherits), else
    of its module's, on one line."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else obj.__doc__
    if not doc:
        doc = getattr(inspect.getmodule(obj), "__doc__", None) or ""
    text = " ".join(inspect.cleandoc(doc).split("\n\n", 1)[0].split())
    text = re.sub(r"^(`[\w.=]+`( and `\w+`)?): ", "", text)  # a module's "`name`: ..."
    m = re.search(r"(?<=[a-z0-9)`'])\. (?=[A-Z(`])", text)
    text = text[: m.start() + 1] if m else text
    return text[:1].upper() + text[1:]


@dataclass
class Entry:
    name: str
    doc: str
    options: list[Row]


def methods() -> list[Entry]:
    from .methods import METHODS

    return [Entry(n, summary(f), component_options(f)) for n, f in METHODS.items()]


def losses() -> list[Entry]:
    from .losses import LOSSES

    return [Entry(n, summary(f), component_options(f)) for n, f in LOSSES.items()]


COMMON_TRAIN = ("epochs", "lr", "batch_size", "weight_decay", "warmup_fraction", "micro_batch_size",
                "select", "select_size")


def modes() -> list[Entry]:
    """Training modes (train.mode): what they train, their default learning rate, and the
    train.* keys each reads beyond those every mode reads."""
    from .train import MODES

    train = {r.key.split(".", 1)[1]: r for r in config_keys(TrainConfig, "train.")}
    out = []
    for name, cls in MODES.items():
        own = [Row(f"train.{k}", train[k].type, train[k].default) for k in sorted(cls.own_fields)
               if k in train]
        doc = summary(cls) + f" Default train.lr: {cls.default_lr:g}."
        out.append(Entry(name, doc, own))
    return out


KINDS: dict[str, tuple[Callable[[], list[Entry]], str]] = {
    "methods": (methods, "method: how the student is made from the weak supervisor (config key "
                "`method`, e.g. method.name=relabel method.k=10)"),
    "losses": (losses, "loss: what the student is trained with (config key `loss`, e.g. "
               "loss=logconf loss.alpha_max=0.5)"),
    "modes": (modes, "training mode: how a model learns (config key `train.mode`); every mode "
              "reads train." + ", train.".join(COMMON_TRAIN)),
}


# ------------------------------------------------------------------ text


def _wrap(text: str, indent: str, width: int = 100) -> Iterator[str]:
    yield from textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent)


def keys_text() -> str:
    """`w2s config --keys`: a key per line with its type and default, its comment below."""
    lines = ["config keys (YAML, or key=value after `w2s run`); type; default"]
    for r in config_keys():
        lines.append(f"{r.key}  ({r.type}; default {r.default})")
        lines.extend(_wrap(r.doc, "    "))
    return "\n".join(lines)


def components_text(kind: str) -> str:
    """`w2s methods` / `losses` / `modes`: each component, what it does, its options."""
    entries, head = KINDS[kind]
    lines = [*_wrap(head, ""), ""]
    for e in entries():
        lines.append(e.name)
        lines.extend(_wrap(e.doc, "    "))
        for r in e.options:
            lines.extend(textwrap.wrap(f"{r.key} = {r.default}  ({r.type})", 100,
                                       initial_indent="    ", subsequent_indent="        "))
        if not e.options:
            lines.append("    (no options)")
    return "\n".join(lines).rstrip()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def markdown() -> str:
    """docs/reference.md."""
    out = ["# Reference", "",
           "Generated by `w2s reference > docs/reference.md` from the config dataclasses and the "
           "registries (a test checks this file is current). The same text is printed by "
           "`w2s config --keys`, `w2s methods`, `w2s losses` and `w2s modes`.", "",
           "## Config keys", "",
           "Set in a YAML file or as `key=value` after `w2s run` (or as keyword arguments of "
           "`w2sgen.run`, docs/api.md).", "",
           "| key | type | default | meaning |", "|---|---|---|---|"]
    out += [f"| `{r.key}` | {_cell(r.type)} | `{_cell(r.default)}` | {_cell(r.doc)} |"
            for r in config_keys()]
    for kind, (entries, head) in KINDS.items():
        title, _, rest = head.partition(": ")
        out += ["", f"## {kind.capitalize()}", "", rest[0].upper() + rest[1:] + ".", ""]
        for e in entries():
            out += [f"### `{e.name}`", "", e.doc, ""]
            if e.options:
                out += ["| option | type | default |", "|---|---|---|"]
                out += [f"| `{r.key}` | {_cell(r.type)} | `{_cell(r.default)}` |" for r in e.options]
                out.append("")
    return "\n".join(out).rstrip() + "\n"
