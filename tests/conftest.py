"""Shared fixtures: tiny models built in memory (no download) and an offline environment."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# `make test` runs the suite in one pytest-xdist worker per core: each worker (and every process
# its tests start, which inherit the variable) then computes on its share of the cores, as torch
# threads of several workers on the same cores spin against each other (docs/speed.md)
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _workers)))

WORDS = ("good great fine happy love nice bad awful sad hate poor terrible the a movie food was "
         "is it this very not and service room hotel").split()


def tiny_tokenizer(causal: bool):
    """WordLevel over WORDS. Spaces separate words; a newline is a token of its own, so joined
    pairs are visible in the ids. The encoder's tokenizer adds [CLS]/[SEP] and segment ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[EOS]", "\n"]
    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(" ", "removed"),
                                                 pre_tokenizers.Split("\n", "isolated")])
    kwargs = {}
    if not causal:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        kwargs["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", eos_token="[EOS]", **kwargs)


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    tok = tiny_tokenizer(causal=False)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=37, max_position_embeddings=64,
                     type_vocab_size=2, architectures=["BertModel"])
    path = tmp_path_factory.mktemp("tiny-bert")
    BertModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory) -> Path:
    return save_llama(tmp_path_factory.mktemp("tiny-llama"), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                      max_position_embeddings=64)


def save_llama(path: Path, **sizes) -> Path:
    """A randomly initialised (seed 0) Llama of the given sizes with the tiny causal tokenizer,
    saved to `path`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = tiny_tokenizer(causal=True)
    cfg = LlamaConfig(vocab_size=len(tok), pad_token_id=0, eos_token_id=4,
                      architectures=["LlamaForCausalLM"], **sizes)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def sentiment_examples(n: int, seed: int = 0):
    """Synthetic two-class sentences over the tiny vocabulary; the label is the polarity."""
    import random

    from w2sgen.tasks import Example

    rng = random.Random(seed)
    pos, neg = WORDS[:6], WORDS[6:12]
    filler = WORDS[12:]
    out = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(pos if label else neg) for _ in range(rng.randint(1, 3))]
        words += [rng.choice(filler) for _ in range(rng.randint(0, 6))]
        rng.shuffle(words)
        out.append(Example(f"s{i}", " ".join(words), label))
    return out


class FakeContext:
    """A MethodContext for testing a method without a run: `features` and `train` are the
    functions given (a call to one not given fails the test); steps are timed nowhere and
    nothing is cached. Typed as the protocol is, so a method that reaches for anything else of
    its context fails here as it would against the pipeline's Context."""

    def __init__(self, cfg=None, features=None, train=None, store=None, quiet: bool = True):
        from w2sgen.config import ExperimentConfig

        self.cfg: ExperimentConfig = cfg if cfg is not None else ExperimentConfig()
        self.quiet = quiet
        self.store = store
        self._features, self._train = features, train

    def step(self, name: str):
        from contextlib import nullcontext

        from w2sgen.runs import StepMark

        return nullcontext(StepMark())

    def cached(self, label, kind, key, compute):
        return compute(), False

    def features(self, ref, split, examples):
        assert self._features is not None, "the method read features the test did not give"
        return self._features(ref, split, examples)

    def train(self, name, ref, splits, train, targets, loss, predict, seed=None, select=None,
              weak=False):
        assert self._train is not None, "the method trained a model the test did not expect"
        return self._train(name, ref, splits, train, targets, loss, predict, seed=seed)
