"""Training: one loop, three modes.

- `probe`: a linear head on frozen, cached features (the CPU default);
- `full`: fine-tune the whole backbone with a linear head on pooled features;
- `lora`: LoRA adapters (peft) on every linear layer plus the head.

Every mode is a `Learner` with `inputs` (what it trains on, built once per split), `fit` and
`predict`; all of them train through `training_loop`, a classifier's use of `optimise`, the one
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
from tqdm.auto import tqdm

from . import features as feats
from . import hardware, memory
from .config import ExperimentConfig, TrainConfig
from .errors import TrainingDiverged, W2SError
from .losses import LossFn
from .models import ModelRef
from .registry import Registry
from .tasks import Example


@dataclass
class History:
    """Per-epoch training loss and, when an evaluation set is given, its accuracy. Evaluation
    accuracy is recorded for the analysis of training dynamics only; it never selects a model."""

    loss: list[float] = field(default_factory=list)
    eval_accuracy: list[float] = field(default_factory=list)
    eval_probs: list[np.ndarray] = field(default_factory=list)


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
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=None)

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
            progress = step / total
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

    return optimise(params, batch_loss, len(targets), epochs=cfg.epochs, batch_size=cfg.batch_size,
                    lr=lr, weight_decay=cfg.weight_decay, seed=seed, desc=desc,
                    schedule=warmup_cosine(int(cfg.warmup_fraction * total)), on_epoch=on_epoch,
                    micro_batch_size=cfg.micro_batch_size,
                    scaler=torch.amp.GradScaler("cuda") if precision == "fp16" else None)


class Learner:
    """A classifier of one mode over one backbone. Subclasses set `default_lr`."""

    default_lr = 1e-3
    uses_features = False

    def __init__(self, ref: ModelRef, cfg: ExperimentConfig):
        self.ref = ref
        self.cfg = cfg

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


def _eval_callback(learner: Learner, eval_set: Optional[tuple[Any, np.ndarray]]):
    if eval_set is None:
        return None
    inputs, labels = eval_set

    def evaluate() -> tuple[np.ndarray, float]:
        probs = learner.predict(inputs)
        return probs.astype(np.float32), float(((probs > 0.5) == labels).mean())

    return evaluate


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
        self.head = nn.Linear(x.shape[1], 2)
        return training_loop(list(self.head.parameters()), lambda idx: self.head(x[idx]),
                             targets, loss_fn, self.cfg.train, self.lr, seed, desc,
                             _eval_callback(self, eval_set))

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
        width = backbone.config.hidden_size
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

    def build(self, backbone: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        r = self.cfg.train.lora_rank
        return get_peft_model(backbone, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                                                   target_modules="all-linear"))


from . import last_k  # noqa: E402,F401  (registers the last_k mode)
