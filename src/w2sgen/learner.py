"""The training loop and what a training mode is.

- `optimise`: the one loop (AdamW over seeded random batches, warm-up then cosine schedule,
  gradient accumulation over micro-batches, fp16's gradient scaler, the NaN check), which
  classifiers (`training_loop`), LM adaptation (methods/generative.py) and LoRA SFT
  (generative/sft.py) all use, so batching, schedules and determinism live in one place;
- `Learner`: a classifier of one mode over one backbone. A mode says what it reads
  (`uses_features`: cached feature rows, else the examples themselves; `own_fields`: the
  train.* keys it reads beyond those every mode reads), its checks of a model before anything
  runs (`preflight`), its cache key (`key`) and its memory estimate (`memory_estimate`: one of
  memory.ESTIMATES, or None), with `fit` and `predict`; MODES registers them (train.py);
- epoch selection: `EpochEval` measures each epoch, `BestEpoch` keeps the weights of the epoch
  train.select=weak_val chooses;
- `prepare` and `enable_checkpointing`: what every backbone mode does before it trains.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from . import hardware, memory
from .config import ExperimentConfig, TrainConfig
from .errors import TrainingDiverged, W2SError
from .example import Example
from .losses import LossFn, Progress
from .models import ModelRef
from .progress import bar as progress_bar
from .progress import epoch_done
from .registry import Registry

# the train.* keys every backbone mode reads beyond those every mode reads (Learner.own_fields)
BACKBONE_FIELDS = frozenset({"precision", "gradient_checkpointing"})


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


def eval_callback(learner: Learner, eval_set: Optional[tuple[Any, np.ndarray]]
                  ) -> Optional[EpochEval]:
    """What `training_loop` runs after each epoch: nothing without an evaluation set or a
    `select_set`, else EpochEval."""
    if eval_set is None and learner.select_set is None:
        return None
    return EpochEval(learner, eval_set)


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
