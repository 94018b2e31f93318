"""Training: one loop, three modes.

- `probe`: a linear head on frozen, cached features (the CPU default);
- `full`: fine-tune the whole backbone with a linear head on pooled features;
- `lora`: LoRA adapters (peft) on every linear layer plus the head.

Every mode is a `Learner` with `inputs` (what it trains on, built once per split), `fit` and
`predict`; all of them train through `training_loop`, a classifier's use of `optimise`, the one
loop that LM adaptation (methods/generative.py) and LoRA SFT (generative/sft.py) use too, so
batching, schedules, determinism and the NaN check live in one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import features as feats
from .config import ExperimentConfig, TrainConfig
from .errors import TrainingDiverged
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
             on_epoch: Optional[Callable[[], tuple[np.ndarray, float]]] = None) -> History:
    """The one training loop (classifiers, LM adaptation, LoRA SFT): AdamW over `params`,
    `epochs` passes over `n` items in seeded random batches. `batch_loss(indices, progress)`
    returns the batch's loss and its weight in the epoch's mean (examples, tokens), or None
    for a batch with nothing to learn from (the step still counts; nothing is updated);
    `progress` is the share of steps done. A non-finite loss stops training with one line
    naming the learning rate to lower."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    total = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: schedule(step, total))
    hist = History()
    step = 0
    bar = tqdm(total=total, desc=desc, unit="step", leave=False, disable=None)
    for _epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        loss_sum, weight_sum = 0.0, 0
        for start in range(0, n, batch_size):
            out = batch_loss(perm[start:start + batch_size], step / total)
            step += 1
            bar.update(1)
            if out is None:
                continue
            loss, weight = out
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"{desc}: loss became {loss.item()} at step {step - 1} of {total}; lower "
                    f"{lr_key} (now {lr:g}){hint}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(params, clip_norm)
            opt.step()
            sched.step()
            loss_sum += loss.item() * weight
            weight_sum += weight
        hist.loss.append(loss_sum / weight_sum if weight_sum else float("nan"))
        if on_epoch is not None:
            probs, acc = on_epoch()
            hist.eval_probs.append(probs)
            hist.eval_accuracy.append(acc)
    bar.close()
    return hist


def training_loop(params: Sequence[nn.Parameter], forward: Callable[[torch.Tensor], torch.Tensor],
                  targets: np.ndarray, loss_fn: LossFn, cfg: TrainConfig, lr: float, seed: int,
                  desc: str, on_epoch: Optional[Callable[[], tuple[np.ndarray, float]]] = None) -> History:
    """A classifier's training: `loss_fn` on `forward(indices)` against the targets, with the
    config's batch size, epochs, weight decay and warm-up then cosine schedule."""
    y = torch.as_tensor(targets, dtype=torch.float32)
    total = cfg.epochs * math.ceil(len(targets) / cfg.batch_size)

    def batch_loss(idx: torch.Tensor, progress: float) -> tuple[torch.Tensor, int]:
        logits = forward(idx)
        return loss_fn(logits.float(), y[idx].to(logits.device), progress), len(idx)

    return optimise(params, batch_loss, len(targets), epochs=cfg.epochs, batch_size=cfg.batch_size,
                    lr=lr, weight_decay=cfg.weight_decay, seed=seed, desc=desc,
                    schedule=warmup_cosine(int(cfg.warmup_fraction * total)), on_epoch=on_epoch)


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


@MODES.register("full")
class FineTuneLearner(Learner):
    """The whole backbone and a linear head, trained end to end on tokenised examples."""

    default_lr = 2e-5

    def build(self, backbone: nn.Module) -> nn.Module:
        return backbone

    def fit(self, inputs: Sequence[Example], targets, loss_fn, seed, desc, eval_set=None):
        from .models import load

        torch.manual_seed(seed)
        backbone, self.tokenizer = load(self.ref, self.cfg.torch_device())
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
                                 seed, desc, _eval_callback(self, eval_set))
        finally:
            self.model.eval()

    def predict(self, inputs: Sequence[Example]) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        enc = feats.tokenize(self.tokenizer, inputs, self.cfg.features.max_length, self.join)
        device = next(self.model.parameters()).device
        out = []
        bs = self.cfg.features.batch_size
        with torch.inference_mode():
            for start in range(0, len(enc), bs):
                logits = self.model(feats.collate(self.tokenizer, enc[start:start + bs], device))
                out.append(torch.softmax(logits.float(), -1)[:, 1].cpu().numpy())
        self.model.train(was_training)
        return np.concatenate(out)


@MODES.register("lora")
class LoraLearner(FineTuneLearner):
    """LoRA adapters on all linear layers of the backbone (peft); the head trains fully."""

    default_lr = 1e-4

    def build(self, backbone: nn.Module) -> nn.Module:
        from peft import LoraConfig, get_peft_model

        r = self.cfg.train.lora_rank
        return get_peft_model(backbone, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.0,
                                                   target_modules="all-linear"))


from . import last_k  # noqa: E402,F401  (registers the last_k mode)
