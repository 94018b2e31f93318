"""LoRA on a backbone (peft): the adapters `train.mode=lora` and `label_tokens` train, and the
check that every name in train.lora_targets is a layer the model has (no weights read)."""
from __future__ import annotations

from typing import Any

from torch import nn

from ..config import ExperimentConfig, TrainConfig
from ..errors import W2SError
from ..loading_policy import hf_kwargs
from ..models import ModelRef

# the train.* keys a LoRA mode reads (Learner.own_fields)
LORA_FIELDS = frozenset({"lora_rank", "lora_targets"})


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
