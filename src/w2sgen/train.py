"""Training: one loop, the modes in MODES.

- `probe`: a linear head on frozen, cached features (the CPU default);
- `full`: fine-tune the whole backbone with a linear head on pooled features;
- `lora`: LoRA adapters (peft) on the linear layers (`train.lora_targets`) plus the head;
- `label_tokens`: a causal LM scored by the next-token log-odds of two label words after a
  prompt, trained with LoRA adapters or every weight (`train.adapter`);
- `last_k` (last_k.py): the top `train.last_k` blocks and the head; the frozen blocks below run
  once per example.
Plugins add modes through the `w2sgen.modes` entry points.

Every mode is a `Learner` that says what it reads (`uses_features`: cached feature rows, else
the examples themselves, which the pipeline hands it per split), its checks (`preflight`), its
cache key (`key`) and its memory estimate (`memory_estimate`), with `fit` and `predict`; all
of them train through `training_loop`, a classifier's use of `optimise`, the one
loop that LM adaptation (methods/generative.py) and LoRA SFT (generative/sft.py) use too, so
batching, schedules, determinism and the NaN check live in one place.

On a GPU the backbone modes fit large models: autocast to `train.precision` (bf16, or fp16
with a gradient scaler; fp32 is no autocast at all), gradient accumulation over
`train.micro_batch_size`, gradient checkpointing (`train.gradient_checkpointing`), LoRA's frozen
base in bf16, and a memory estimate (memory.py) printed before training that refuses a run
which cannot fit.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from . import features as feats
from . import hardware, memory
from .config import ExperimentConfig, TrainConfig
from .errors import TrainingDiverged, W2SError
from .example import Example
from .loading_policy import hf_kwargs
from .losses import LossFn, Progress
from .models import ModelRef
from .progress import bar as progress_bar
from .progress import epoch_done
from .registry import Registry


@dataclass
class History:
    """Per-epoch training loss and, when an evaluation set is given, its accuracy. Evaluation
    accuracy is recorded for the analysis of training dynamics only; it never selects a model."""

    loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_probs: list[np.ndarray] = field(default_factory=list)
    # train.select=weak_val: AUROC against the held-out weak labels after every epoch, and the
    # epoch (1-based) whose weights were kept; empty and None otherwise
    select_auroc: list[float] = field(default_factory=list)
    selected_epoch: Optional[int] = None


BatchLoss = Callable[[torch.Tensor, float], Optional[tuple[torch.Tensor, int]]]


def warmup_cosine(warmup: int) -> Callable[[int, int], float]:
    """Learning-rate factor at `step` of `total`: linear warm-up over `warmup` steps, then
    cosine decay to zero."""
    def factor(step: int, total: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    return factor


def constant(step: int, total: int) -> float:
    return 1.0


def optimise(params: Sequence[nn.Parameter], batch_loss: BatchLoss, n: int, *, epochs: int,
             batch_size: int, lr: float, weight_decay: float, seed: int, desc: str,
             schedule: Callable[[int, int], float] = constant, clip_norm: Optional[float] = None,
             lr_key: str = "train.lr", hint: str = " or check the labels",
             on_epoch: Optional[Callable[[], tuple[np.ndarray, float]]] = None,
             micro_batch_size: Optional[int] = None,
             scaler: Optional[torch.amp.GradScaler] = None) -> History:
    """The one training loop (classifiers, LM adaptation, LoRA SFT): AdamW over `params`,
    `epochs` passes over `n` items in seeded random batches. `batch_loss(indices, progress)`
    returns the batch's loss and its weight in the epoch's mean (examples, tokens), or None
    for a batch with nothing to learn from (the step still counts; nothing is updated);
    `progress` is the share of steps done. A non-finite loss stops training with one line
    naming the learning rate to lower.

    `micro_batch_size` (gradient accumulation, for memory): each batch is run in micro-batches
    whose losses are weighted by their weights, so the step's gradient is the whole batch's
    (exactly, for a loss that is a weighted mean over its items; a loss with batch statistics,
    such as logconf's hardening threshold, sees the micro-batch); one optimizer and scheduler
    step per batch, as without it. `scaler`: fp16's gradient scaler."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: schedule(step, total))
    hist = History()
    step = 0
    bar = progress_bar(total, desc, "step", leave=False)

    def check(loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"{desc}: loss became {loss.item()} at step {step - 1} of {total}; lower "
                f"{lr_key} (now {lr:g}){hint}")

    def backward(loss: torch.Tensor) -> None:
        (loss if scaler is None else scaler.scale(loss)).backward()

    def update() -> None:
        if clip_norm is not None:
            if scaler is not None:
                scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        if scaler is None:
            opt.step()
        else:
            scaler.step(opt)
            scaler.update()
        sched.step()

    for _epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        loss_sum, weight_sum = 0.0, 0
        for start in range(0, n, batch_size):
            idx = perm[start:start + batch_size]
            progress = Progress(step, total)
            step += 1
            bar.update(1)
            if micro_batch_size is None or micro_batch_size >= len(idx):
                out = batch_loss(idx, progress)
                if out is None:
                    continue
                loss, weight = out
                check(loss)
                opt.zero_grad(set_to_none=True)
                backward(loss)
                update()
                loss_sum += loss.item() * weight
                weight_sum += weight
                continue
            accumulated = accumulate(batch_loss, idx, micro_batch_size, progress, params,
                                     opt, check, backward)
            if accumulated is None:
                continue
            update()
            loss_sum += accumulated[0]
            weight_sum += accumulated[1]
        hist.loss.append(loss_sum / weight_sum if weight_sum else float("nan"))
        if on_epoch is not None:
            probs, acc = on_epoch()
            hist.eval_probs.append(probs)
            hist.eval_accuracy.append(acc)
        epoch_done(len(hist.loss), hist.loss[-1], hist.eval_accuracy[-1] if on_epoch else float("nan"))
    bar.close()
    return hist


def accumulate(batch_loss: BatchLoss, idx: torch.Tensor, micro: int, progress: float,
               params: Sequence[nn.Parameter], opt: torch.optim.Optimizer,
               check: Callable[[torch.Tensor], None], backward: Callable[[torch.Tensor], None]
               ) -> Optional[tuple[float, int]]:
    """One batch's gradient from its micro-batches, left in `params`' .grad: the sum of each
    micro-batch's gradient times its share of the batch's weight. The weights are known only
    once each micro-batch has run, so each loss is scaled by weight / (first weight x number of
    micro-batches) - ~1/count, which keeps fp16's scaled gradients in range - and the gradient
    is corrected by that guess over the true total at the end (a no-op for equal micro-batches).
    Returns (weighted loss sum, total weight), or None when no micro-batch had anything to
    learn from."""
    chunks = idx.split(micro)
    opt.zero_grad(set_to_none=True)
    guess: Optional[float] = None
    loss_sum, weight_sum = 0.0, 0
    for chunk in chunks:
        out = batch_loss(chunk, progress)
        if out is None or not out[1]:
            continue
        loss, weight = out
        check(loss)
        guess = guess or float(weight * len(chunks))
        backward(loss * (weight / guess))
        loss_sum += loss.item() * weight
        weight_sum += weight
    if not weight_sum:
        return None
    if guess is not None and weight_sum != guess:
        for p in params:
            if p.grad is not None:
                p.grad.mul_(guess / weight_sum)
    return loss_sum, weight_sum


def training_loop(params: Sequence[nn.Parameter], forward: Callable[[torch.Tensor], torch.Tensor],
                  targets: np.ndarray, loss_fn: LossFn, cfg: TrainConfig, lr: float, seed: int,
                  desc: str, on_epoch: Optional[Callable[[], tuple[np.ndarray, float]]] = None,
                  precision: str = "fp32", device: Any = "cpu") -> History:
    """A classifier's training: `loss_fn` on `forward(indices)` against the targets, with the
    config's batch size, micro-batch size, epochs, weight decay and warm-up then cosine
    schedule. `forward` runs under autocast to `precision` (resolved) on `device`; the loss is
    computed in fp32 outside it."""
    y = torch.as_tensor(targets, dtype=torch.float32)
    total = cfg.epochs * math.ceil(len(targets) / cfg.batch_size)

    def batch_loss(idx: torch.Tensor, progress: float) -> tuple[torch.Tensor, int]:
        with hardware.autocast(precision, device):
            logits = forward(idx)
        return loss_fn(logits.float(), y[idx].to(logits.device), progress), len(idx)

    keeper = on_epoch.keeper(params) if isinstance(on_epoch, EpochEval) else None
    hist = optimise(params, batch_loss, len(targets), epochs=cfg.epochs, batch_size=cfg.batch_size,
                    lr=lr, weight_decay=cfg.weight_decay, seed=seed, desc=desc,
                    schedule=warmup_cosine(int(cfg.warmup_fraction * total)),
                    on_epoch=on_epoch if keeper is None else keeper.after_epoch,
                    micro_batch_size=cfg.micro_batch_size,
                    scaler=torch.amp.GradScaler("cuda") if precision == "fp16" else None)
    if keeper is not None:
        keeper.finish(hist)
    return hist


class Learner:
    """A classifier of one mode over one backbone. Subclasses set `default_lr`.

    `select_set` (inputs, weak labels), set before `fit`: train.select=weak_val's held-out
    examples; after every epoch the learner's AUROC against their hard weak labels is measured
    and the weights of the best epoch are kept (`EpochEval`, in `training_loop`)."""

    default_lr = 1e-3
    uses_features = False
    checks_models = False  # whether `preflight` checks anything (validate.check_models runs it)
    reads_texts = False  # whether `preflight` checks the examples' texts (a suite reads its data)
    # TrainConfig fields this mode reads beyond those every mode reads (epochs, lr, batch_size,
    # weight_decay, warmup_fraction, micro_batch_size, select, select_size): what a weak
    # supervisor under this mode takes over from `train` (ExperimentConfig.weak_inherited_note)
    own_fields: frozenset[str] = frozenset()
    # Which of memory.ESTIMATES this mode's training memory follows; None: no estimate (the
    # probe trains a head on cached features; a plugin mode that declares none trains without
    # the pipeline's GPU memory check, and a suite's estimate says "no estimate")
    memory_estimate: Optional[str] = None

    def __init__(self, ref: ModelRef, cfg: ExperimentConfig):
        self.ref = ref
        self.cfg = cfg
        self.select_set: Optional[tuple[Any, np.ndarray]] = None

    @classmethod
    def preflight(cls, ref: ModelRef, cfg: ExperimentConfig,
                  examples: Optional[Sequence[Example]] = None) -> None:
        """Checks of this mode for `ref` that need the model's files but no weights (tokenizer,
        config), so a bad setting fails in one line before anything is recorded or trained:
        run when a config is built (validate.check_models: `examples` None, no data read; what
        needs the data is left for later) and by the pipeline on the run's `examples` before
        the run is recorded, and on each suite cell's data as the suite loads when the mode
        sets `reads_texts`. Nothing to check by default; a mode that checks sets
        `checks_models`."""

    @classmethod
    def key(cls, cfg: ExperimentConfig) -> dict[str, Any]:
        """What else a cached training step of this mode depends on (beyond the train.*
        settings), for its cache key; empty by default."""
        return {}

    @property
    def lr(self) -> float:
        return self.cfg.train.lr if self.cfg.train.lr is not None else self.default_lr

    def fit(self, inputs: Any, targets: np.ndarray, loss_fn: LossFn, seed: int, desc: str,
            eval_set: Optional[tuple[Any, np.ndarray]] = None) -> History:
        raise NotImplementedError

    def predict(self, inputs: Any) -> np.ndarray:
        """Probability of class 1 for each input."""
        raise NotImplementedError


MODES: Registry[type[Learner]] = Registry("training mode")


class EpochEval:
    """After each epoch: the learner's predictions and accuracy on the evaluation set (test:
    diagnostics only, never selection) and, with a `select_set`, its AUROC against the weak
    labels of those held-out examples, which selects the epoch (`keeper`)."""

    def __init__(self, learner: Learner, eval_set: Optional[tuple[Any, np.ndarray]]):
        self.learner, self.eval_set = learner, eval_set

    def __call__(self) -> tuple[np.ndarray, float]:
        if self.eval_set is None:
            return np.empty(0, np.float32), float("nan")
        inputs, labels = self.eval_set
        probs = self.learner.predict(inputs)
        return probs.astype(np.float32), float(((probs > 0.5) == labels).mean())

    def keeper(self, params: Sequence[nn.Parameter]) -> Optional[BestEpoch]:
        if self.learner.select_set is None:
            return None
        return BestEpoch(self, params)


class BestEpoch:
    """train.select=weak_val inside one training loop: after each epoch, the AUROC of the
    learner's predictions on the held-out examples against their hard weak labels (> 0.5); the
    trained parameters of the best epoch (the earliest, on ties) are copied (to the CPU) and put
    back when training ends."""

    def __init__(self, epoch_eval: EpochEval, params: Sequence[nn.Parameter]):
        from .metrics import roc_auc

        self.epoch_eval, self.params, self.roc_auc = epoch_eval, list(params), roc_auc
        assert epoch_eval.learner.select_set is not None
        self.inputs, weak = epoch_eval.learner.select_set
        self.hard = np.asarray(weak) > 0.5
        if self.hard.all() or not self.hard.any():
            raise W2SError(f"train.select=weak_val: the weak labels of all {len(self.hard)} "
                           "held-out examples are one class, so AUROC cannot rank epochs; raise "
                           "train.select_size or set train.select=last")
        self.scores: list[float] = []
        self.best: Optional[list[torch.Tensor]] = None

    def after_epoch(self) -> tuple[np.ndarray, float]:
        out = self.epoch_eval()
        score = self.roc_auc(self.hard, self.epoch_eval.learner.predict(self.inputs))
        if not self.scores or score > max(self.scores):
            self.best = [p.detach().to("cpu", copy=True) for p in self.params]
        self.scores.append(float(score))
        return out

    def finish(self, hist: History) -> None:
        hist.select_auroc = list(self.scores)
        hist.selected_epoch = int(np.argmax(self.scores)) + 1
        assert self.best is not None
        with torch.no_grad():
            for p, saved in zip(self.params, self.best):
                p.copy_(saved.to(p.device))


def _eval_callback(learner: Learner, eval_set: Optional[tuple[Any, np.ndarray]]
                   ) -> Optional[EpochEval]:
    if eval_set is None and learner.select_set is None:
        return None
    return EpochEval(learner, eval_set)


@MODES.register("probe")
class ProbeLearner(Learner):
    """Linear head on standardised frozen features; inputs are the cached feature matrix."""

    default_lr = 1e-3
    uses_features = True

    def fit(self, inputs, targets, loss_fn, seed, desc, eval_set=None):
        torch.manual_seed(seed)
        x = torch.as_tensor(inputs, dtype=torch.float32)
        self.mean, self.std = x.mean(0), x.std(0).clamp(min=1e-6)
        x = (x - self.mean) / self.std
        self.head = self.make_head(x.shape[1])
        return training_loop(list(self.head.parameters()), lambda idx: self.head(x[idx]),
                             targets, loss_fn, self.cfg.train, self.lr, seed, desc,
                             _eval_callback(self, eval_set))

    def make_head(self, width: int) -> nn.Module:
        """The classifier trained on `width` standardised features: two logits per example."""
        return nn.Linear(width, 2)

    def predict(self, inputs):
        with torch.inference_mode():
            x = (torch.as_tensor(inputs, dtype=torch.float32) - self.mean) / self.std
            return torch.softmax(self.head(x), -1)[:, 1].numpy()


class _Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, pooling: str, width: int):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = nn.Linear(width, 2)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(feats.backbone_forward(self.backbone, batch, self.pooling))


def prepare(learner: Learner, device: str) -> str:
    """Before a backbone mode trains: its concrete precision, and its memory estimate printed
    in one line (on a GPU, a run that cannot fit stops here, naming the setting to change).
    Runs before the seed is set: resolving `auto` may benchmark, which draws random numbers."""
    precision = memory.train_precision(learner.cfg.train, device)
    est = memory.check_fits(learner.ref, learner.cfg, device)
    if est is not None:
        print(f"{learner.ref.name}: {est.line()}", file=sys.stderr, flush=True)
    return precision


def enable_checkpointing(backbone: Any) -> None:
    """train.gradient_checkpointing: recompute each block's activations in backward instead of
    keeping them (non-reentrant, so it works with a frozen base under LoRA)."""
    if not getattr(backbone, "supports_gradient_checkpointing", False):
        raise W2SError(f"train.gradient_checkpointing=true: transformers does not support it for "
                       f"{type(backbone).__name__}; set train.gradient_checkpointing=false (and "
                       "train.micro_batch_size to save memory)")
    enable = getattr(backbone, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:  # transformers before activation_checkpointing_enable
        backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


@MODES.register("full")
class FineTuneLearner(Learner):
    """The whole backbone and a linear head, trained end to end on tokenised examples."""

    default_lr = 2e-5
    own_fields = frozenset({"precision", "gradient_checkpointing"})
    memory_estimate: Optional[str] = "full"

    def build(self, backbone: nn.Module) -> nn.Module:
        return backbone

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)
        torch.manual_seed(seed)
        weights = memory.weights_dtype(self.cfg.train.mode, self.precision, where)
        ref = self.ref if weights == "fp32" else dataclasses.replace(
            self.ref, load_kwargs={**self.ref.load_kwargs, "dtype": hardware.torch_dtype(weights)})
        backbone, self.tokenizer = load(ref, where)
        if self.cfg.train.gradient_checkpointing:
            enable_checkpointing(backbone)
        backbone = self.build(backbone)
        width = int(getattr(backbone.config, "hidden_size"))  # noqa: B009 (config is typed loosely)
        device = next(backbone.parameters()).device
        self.model = _Classifier(backbone, self.cfg.features.pooling_for(self.ref), width).to(device)
        self.model.train()
        self.join = self.ref.kind == "causal"
        enc = feats.tokenize(self.tokenizer, inputs, self.cfg.features.max_length, self.join)

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.model(feats.collate(self.tokenizer, [enc[i] for i in idx.tolist()], device))

        params = [p for p in self.model.parameters() if p.requires_grad]
        try:
            return training_loop(params, forward, targets, loss_fn, self.cfg.train, self.lr,
                                 seed, desc, _eval_callback(self, eval_set), self.precision, device)
        finally:
            self.model.eval()

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        enc = feats.tokenize(self.tokenizer, inputs, self.cfg.features.max_length, self.join)
        device = next(self.model.parameters()).device
        out = []
        bs = self.cfg.features.batch_size
        with torch.inference_mode(), hardware.autocast(self.precision, device):
            for start in range(0, len(enc), bs):
                logits = self.model(feats.collate(self.tokenizer, enc[start:start + bs], device))
                out.append(torch.softmax(logits.float(), -1)[:, 1].cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(out)


@MODES.register("lora")
class LoraLearner(FineTuneLearner):
    """LoRA adapters on all linear layers of the backbone (peft); the head trains fully. On a
    GPU training in bf16 the frozen base loads in bf16; peft keeps the adapters in fp32."""

    default_lr = 1e-4
    checks_models = True
    own_fields = FineTuneLearner.own_fields | {"lora_rank", "lora_targets"}
    memory_estimate = "lora"

    @classmethod
    def preflight(cls, ref, cfg, examples=None):
        check_lora_targets(ref, cfg, causal_lm=False)

    def build(self, backbone: nn.Module) -> nn.Module:
        return add_lora(backbone, self.cfg.train)


def add_lora(model: nn.Module, train: TrainConfig) -> Any:
    """LoRA adapters (rank r, alpha 2r, no dropout) on train.lora_targets of `model`, whose
    other weights freeze; peft changes `model` in place and returns its wrapper."""
    from peft import LoraConfig, get_peft_model

    r = train.lora_rank
    targets = train.lora_targets if isinstance(train.lora_targets, str) else list(train.lora_targets)
    return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                                            target_modules=targets))


ADAPTABLE = ("Linear", "Conv1D", "Embedding")  # module types peft's LoRA adapts


def check_lora_targets(ref: ModelRef, cfg: ExperimentConfig, causal_lm: bool) -> None:
    """Every name in train.lora_targets must be a linear (or embedding) module of the model
    (peft matches a name against the end of each module's dotted path); checked on the model
    built from its config on the meta device, so no weight is read."""
    targets = cfg.train.lora_targets
    if (causal_lm and cfg.train.adapter != "lora") or isinstance(targets, str):
        return
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    kwargs = {k: v for k, v in ref.load_kwargs.items() if k in ("revision", "gguf_file")}
    try:
        config = AutoConfig.from_pretrained(ref.path, **hf_kwargs(kwargs))
        with init_empty_weights():
            model = (AutoModelForCausalLM if causal_lm else AutoModel).from_config(config)
    except Exception:  # noqa: BLE001 - an unreadable config: peft reports it when it loads
        return
    modules = [(n, type(m).__name__) for n, m in model.named_modules() if n]
    for target in targets:
        kinds = {kind for n, kind in modules if n == target or n.endswith("." + target)}
        if not kinds & set(ADAPTABLE):
            linear = sorted({n.rsplit(".", 1)[-1] for n, kind in modules if kind in ADAPTABLE[:2]})
            what = (f"its modules named {target!r} are {', '.join(sorted(kinds))}, not linear "
                    "layers" if kinds else f"it has no module named {target!r}")
            raise W2SError(f"train.lora_targets: model {ref.name!r} ({type(model).__name__}): "
                           f"{what}; its linear layers are {', '.join(linear)}; set "
                           "train.lora_targets to some of them or to all-linear")


def label_prompt_format(cfg: ExperimentConfig) -> Any:
    """train.mode=label_tokens' prompt: train.instruction / label_words / template, each
    defaulting to the task's prompt (TaskSpec.prompt) and prompting.DEFAULT_TEMPLATE."""
    from .prompting import DEFAULT_TEMPLATE, PromptFormat
    from .tasks import TASKS, task_component

    instruction, words = TASKS.get(task_component(cfg.task).name).prompt
    t = cfg.train
    neg, pos = (w.strip() for w in (t.label_words or words))
    return PromptFormat(instruction if t.instruction is None else t.instruction, (neg, pos),
                        t.template or DEFAULT_TEMPLATE)


class LabelPrompts:
    """Zero-shot prompts as token ids for one tokenizer - start tokens, instruction, then the
    template's query (prompting.example_text) up to the label - and the token ids of the
    (negative, positive) label words as the next token (lm/tokens.py). The blocks are built as
    ICL's prompts are (lm.tokens.start_ids / block_ids, which LocalLM's blocks use too), so both
    see the same zero-shot prompt. A prompt is never cut (the label token must follow all of
    it): one longer than features.max_length is refused."""

    def __init__(self, tokenizer: Any, fmt: Any, model: str, max_length: int):
        from .lm.tokens import block_ids, label_token_ids, start_ids

        self.tok, self.fmt = tokenizer, fmt
        self.fixed = start_ids(tokenizer) + [t for b in block_ids(tokenizer, fmt.head_blocks()) for t in b]
        self.label_ids = list(label_token_ids(tokenizer, fmt.words, context=fmt.query(""),
                                              model=model))
        self.model, self.max_length = model, max_length

    def encode(self, examples: Sequence[Example]) -> list[list[int]]:
        from .lm.tokens import block_ids
        from .prompting import example_text

        queries = block_ids(self.tok, [self.fmt.query(example_text(e)) for e in examples])
        out = [self.fixed + q for q in queries]
        long = [i for i, x in enumerate(out) if len(x) > self.max_length]
        if long:
            worst = max(long, key=lambda i: len(out[i]))
            raise W2SError(f"train.mode=label_tokens: {len(long)} of {len(out)} prompts for "
                           f"{self.model} are longer than features.max_length={self.max_length} "
                           f"tokens (longest {len(out[worst])}, example {examples[worst].id!r}); "
                           f"set features.max_length={len(out[worst])} or more, or shorten "
                           "train.instruction (a prompt is never cut)")
        return out

    def check_bare(self) -> None:
        """Before any data is read: the prompt of an empty text (instruction and template alone)
        within features.max_length, else no prompt can be."""
        from .lm.tokens import block_ids

        n = len(self.fixed) + len(block_ids(self.tok, [self.fmt.query("")])[0])
        if n > self.max_length:
            raise W2SError(f"train.mode=label_tokens: the prompt for {self.model} is {n} tokens "
                           "before any text (instruction and template), longer than "
                           f"features.max_length={self.max_length} tokens; set "
                           f"features.max_length above {n} (with room for the texts), or shorten "
                           "train.instruction (a prompt is never cut)")


def check_label_tokens(ref: ModelRef, cfg: ExperimentConfig,
                       examples: Optional[Sequence[Example]] = None) -> None:
    """train.mode=label_tokens' refusals for one model, from its config and tokenizer (no
    weights): an encoder, a label word that is not one token after the prompt, a prompt longer
    than features.max_length (every prompt of `examples`; without them, the prompt of an empty
    text), a LoRA target the model lacks. The one check behind LabelTokenLearner.preflight,
    which runs it when a config is built (validate.check_models) and before a run is recorded."""
    from .models import load_tokenizer

    if ref.kind != "causal":
        weak = ("; the weak supervisor can train otherwise on its own (weak_train.mode=probe)"
                if ref.name == cfg.weak_model else "")
        raise W2SError(f"train.mode=label_tokens trains a causal LM's label-token logits, but "
                       f"{ref.name!r} is an encoder; use causal weak and strong models (e.g. "
                       f"smollm2-135m) or another train.mode{weak}")
    prompts = LabelPrompts(load_tokenizer(ref), label_prompt_format(cfg), ref.name,
                           cfg.features.max_length)
    if examples is None:
        prompts.check_bare()
    else:
        prompts.encode(examples)
    check_lora_targets(ref, cfg, causal_lm=True)


@MODES.register("label_tokens")
class LabelTokenLearner(Learner):
    """A causal LM trained to put probability on two label tokens after a prompt (the 2026
    reference setting): the LM's next-token logits of the (negative, positive) label tokens at
    the prompt's last position are the 2-class logits every loss takes, so a soft weak label p
    is the target distribution (1 - p, p) over the two tokens (the rest of the vocabulary is
    left free: only their difference is trained and read). LoRA adapters on
    train.lora_targets by default (train.adapter=lora; `none` trains every weight); no new
    head. Predictions are the softmax over the two label logits. Precision, micro-batches and
    gradient checkpointing as in `full`/`lora`; the frozen base loads in bf16 on a GPU
    training in bf16 under LoRA."""

    default_lr = 1e-4
    checks_models = True
    reads_texts = True  # every prompt must fit features.max_length
    own_fields = LoraLearner.own_fields | {"adapter", "label_words", "instruction", "template"}
    memory_estimate = "label_tokens"

    @property
    def lr(self) -> float:
        t = self.cfg.train
        return t.lr if t.lr is not None else (1e-4 if t.adapter == "lora" else 2e-5)

    @classmethod
    def key(cls, cfg):  # the prompt as resolved: a task's default prompt may change
        fmt = label_prompt_format(cfg)
        return {"prompt": {"instruction": fmt.instruction, "words": list(fmt.words),
                           "template": fmt.template}}

    @classmethod
    def preflight(cls, ref, cfg, examples=None):
        check_label_tokens(ref, cfg, examples)

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        where = self.cfg.torch_device()
        self.precision = prepare(self, where)
        torch.manual_seed(seed)
        t = self.cfg.train
        weights = memory.weights_dtype(t.mode, self.precision, where, t.adapter)
        ref = self.ref if weights == "fp32" else dataclasses.replace(
            self.ref, load_kwargs={**self.ref.load_kwargs, "dtype": hardware.torch_dtype(weights)})
        lm, tokenizer = load(ref, where, lm_head=True)
        self.prompts = LabelPrompts(tokenizer, label_prompt_format(self.cfg), self.ref.name,
                                    self.cfg.features.max_length)
        enc = self.prompts.encode(inputs)  # before any work: a too-long prompt fails here
        if t.gradient_checkpointing:
            enable_checkpointing(lm)
        self.net = add_lora(lm, t) if t.adapter == "lora" else lm
        self.lm, self.pad = lm, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.softcap = getattr(lm.config, "final_logit_softcapping", None)
        self.device = next(lm.parameters()).device
        self.net.train()

        def forward(idx: torch.Tensor) -> torch.Tensor:
            return self.label_logits([enc[i] for i in idx.tolist()])

        params = [p for p in self.net.parameters() if p.requires_grad]
        try:
            return training_loop(params, forward, targets, loss_fn, t, self.lr, seed, desc,
                                 _eval_callback(self, eval_set), self.precision, self.device)
        finally:
            self.net.eval()

    def label_logits(self, rows: Sequence[Sequence[int]]) -> torch.Tensor:
        """(len(rows), 2): the LM's next-token logits of the negative and positive label tokens
        after each prompt (token id lists; right-padded, so positions are those of each prompt
        alone; the vocabulary head runs on the last real position only)."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.as_tensor(list(r), dtype=torch.long)
            mask[i, :len(r)] = 1
        hidden = self.lm.base_model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                    use_cache=False).last_hidden_state
        last = torch.tensor([len(r) - 1 for r in rows], device=self.device)
        logits = self.lm.get_output_embeddings()(hidden[torch.arange(len(rows), device=self.device), last])
        logits = logits.float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits[:, self.prompts.label_ids]

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        was_training = self.net.training
        self.net.eval()
        enc = self.prompts.encode(inputs)
        order = np.argsort([-len(e) for e in enc], kind="stable")
        out = np.empty(len(enc), dtype=np.float32)
        bs = self.cfg.features.batch_size
        with torch.inference_mode(), hardware.autocast(self.precision, self.device):
            for start in range(0, len(order), bs):
                rows = order[start:start + bs]
                logits = self.label_logits([enc[i] for i in rows])
                out[rows] = torch.softmax(logits.float(), -1)[:, 1].cpu().numpy()
        self.net.train(was_training)
        return out


from . import last_k  # noqa: E402,F401  (registers the last_k mode)
