"""The training-memory estimate (memory.py) against exact counts and formulas on tiny models
built in memory, against the bytes autograd really saves, and the burns suite against one
80 GB GPU."""
from __future__ import annotations

import pytest
import torch

from w2sgen import hardware, memory, sweep
from w2sgen.errors import W2SError
from w2sgen.models import load, resolve
from w2sgen.validate import load_config


def numel(module: torch.nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_parameter_counts_equal_the_loaded_model(fixture, request):
    ref = resolve(str(request.getfixturevalue(fixture)))
    arch = memory.arch_of(ref)
    model, _ = load(ref)
    assert arch.params == numel(model)
    blocks = model.encoder.layer if hasattr(model, "encoder") else model.layers
    assert arch.layers == len(blocks) and arch.block_params == numel(blocks[0])
    assert arch.hidden == model.config.hidden_size


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
@pytest.mark.parametrize("rank", [4, 8])
def test_lora_trainable_count_equals_peft(fixture, rank, request):
    from peft import LoraConfig, get_peft_model

    ref = resolve(str(request.getfixturevalue(fixture)))
    model, _ = load(ref)
    peft_model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                                                  target_modules="all-linear"))
    assert rank * memory.arch_of(ref).lora_per_rank == numel(peft_model, trainable=True)


def test_parts_follow_the_formula(tiny_llama_dir):
    """Parameters, gradients and optimizer state from the trained and frozen counts: bytes per
    parameter 4 + 4 + 12 in fp32 (AdamW's two moments and its foreach temporary), plus 2 for
    autocast's cached bf16 copy of each trained fp32 weight; LoRA's frozen base at 2 in bf16."""
    arch = memory.arch_of(resolve(str(tiny_llama_dir)))
    head = 2 * arch.hidden + 2
    kw = dict(batch_size=8, seq_len=16)

    full = memory.estimate(arch, "full", precision="fp32", **kw)
    n = arch.params + head
    assert (full.parameters, full.gradients, full.optimizer) == (4 * n, 4 * n, 12 * n)
    assert memory.estimate(arch, "full", precision="bf16", **kw).parameters == 6 * n

    lora = memory.estimate(arch, "lora", precision="bf16", weights="bf16", lora_rank=4, **kw)
    t = 4 * arch.lora_per_rank + head
    assert (lora.parameters, lora.gradients, lora.optimizer) == (2 * arch.params + 6 * t, 4 * t, 12 * t)

    half = memory.estimate(arch, "full", precision="bf16", weights="bf16", **kw)  # fp32 masters
    assert half.optimizer == 12 * n + 4 * arch.params

    last = memory.estimate(arch, "last_k", precision="fp32", last_k=1, **kw)
    assert last.gradients == 4 * (arch.block_params + head)
    assert last.parameters == 4 * (arch.params + head)
    assert full.total == full.parameters + full.gradients + full.optimizer + full.activations


def test_activations_follow_the_formula(tiny_llama_dir):
    arch = memory.arch_of(resolve(str(tiny_llama_dir)))
    b, s, h = 8, 16, arch.hidden
    layer = memory.layer_bytes(arch, b, s, 4)
    ends = b * s * h * 4 * 2  # embeddings and final norm
    plain = memory.estimate(arch, "full", batch_size=b, seq_len=s)
    assert plain.activations == arch.layers * layer + ends
    ckpt = memory.estimate(arch, "full", batch_size=b, seq_len=s, checkpointing=True)
    assert ckpt.activations == arch.layers * b * s * h * 4 + layer + ends
    # one micro-batch at a time: the activations of the micro-batch, the rest unchanged
    micro = memory.estimate(arch, "full", batch_size=4 * b, seq_len=s, micro_batch_size=b)
    assert micro.activations == plain.activations and micro.optimizer == plain.optimizer
    assert "micro-batches of 8" in micro.line() and micro.line().startswith("memory estimate: ")
    # per token and layer, in fp32: 8h (norm inputs) + 28h (attention) + 4h + 16i (gated MLP)
    assert layer == b * s * (8 * h + 4 * 7 * h + 16 * arch.intermediate)


def saved_bytes(model: torch.nn.Module, batch: int, seq: int) -> int:
    """Bytes autograd keeps for backward in one training forward (parameters excluded)."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    ids = torch.randint(5, 40, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[0, seq // 2:] = 0
    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, attention_mask=mask).last_hidden_state.sum()
    return sum(seen.values())


def wide(kind: str):
    """Small models of three block designs: post-norm BERT, GPT-2 (Conv1D, Python GELU,
    dropout), Llama (RMSNorm, SwiGLU, grouped-query attention). Attention dropout is off: on a
    CPU it would select the unfused attention kernel, which CUDA does not need."""
    from transformers import BertConfig, GPT2Config, LlamaConfig

    if kind == "bert":
        return BertConfig(vocab_size=40, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=320, attention_probs_dropout_prob=0.0)
    if kind == "gpt2":
        return GPT2Config(vocab_size=40, n_embd=128, n_layer=2, n_head=4, n_inner=320, attn_pdrop=0.0,
                          bos_token_id=0, eos_token_id=0)
    return LlamaConfig(vocab_size=40, hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=320)


@pytest.mark.parametrize("kind", ["bert", "gpt2", "llama"])
def test_activations_match_what_autograd_saves(kind):
    """In fp32 on the CPU the estimate is within 25% of the bytes autograd saves (measured
    at 0.88-0.93 of them: CPU linear layers keep a few extra flattened copies)."""
    from transformers import AutoModel

    torch.manual_seed(0)
    config = wide(kind)
    arch = memory.arch_from_config(config, kind)
    batch, seq = 4, 64
    measured = saved_bytes(AutoModel.from_config(config), batch, seq)
    est = memory.estimate(arch, "full", batch_size=batch, seq_len=seq).activations
    assert 0.75 < est / measured < 1.25, (kind, est, measured)


def test_published_configs_give_the_published_sizes():
    """Parameter counts of the backbones (no LM head) from the PUBLISHED table."""
    sizes = {"openai-community/gpt2": 124_439_808, "openai-community/gpt2-medium": 354_823_168,
             "openai-community/gpt2-large": 774_030_080, "openai-community/gpt2-xl": 1_557_611_200}
    for name, n in sizes.items():
        assert memory.published(name).params == n
    qwen7 = memory.published("Qwen/Qwen2.5-7B")  # 7.62B with its untied 152064 x 3584 LM head
    assert qwen7.params + 152064 * 3584 == 7_615_616_512 and qwen7.mlp == "gated"


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_every_burns_pair_fits_one_80gb_gpu(precision):
    rows = sweep.memory_estimates("suites/burns.yaml", precision)
    assert {r.model for r in rows} >= {"openai-community/gpt2-xl", "Qwen/Qwen2.5-7B"}
    too_big = [(r.pair, r.model, r.estimate.line()) for r in rows
               if r.estimate.total > memory.HEADROOM * 80e9]
    assert not too_big


def fake_gpu(monkeypatch, gb: float) -> None:
    gpu = hardware.Probe("cuda", "Fake GPU", "sm_90", 1, True, 1.0, 2.0, int(gb * 1e9))
    monkeypatch.setattr(hardware, "probe", lambda device="cpu", refresh=False: gpu)
    monkeypatch.setattr(hardware, "gpu_figures", lambda: (gpu, "GPU Fake GPU: test figures"))


def test_check_fits_refuses_with_the_setting_to_change(tiny_llama_dir, monkeypatch):
    ref = resolve(str(tiny_llama_dir))
    cfg = load_config(None, ["train.mode=full", "train.batch_size=64", "features.max_length=64",
                             "train.precision=fp32"])
    est = memory.check_fits(ref, cfg, "cpu")  # a CPU is never refused
    assert est is not None and est.total > 0
    arch = memory.arch_of(ref)
    settings = memory.settings_of(cfg, "cpu")
    # a GPU just big enough for micro-batches of 16: that is the advice
    need16 = memory.estimate(arch, **{**settings, "micro_batch_size": 16}).total
    need32 = memory.estimate(arch, **{**settings, "micro_batch_size": 32}).total
    fake_gpu(monkeypatch, (need16 + need32) / 2 / memory.HEADROOM / 1e9)
    with pytest.raises(W2SError) as err:
        memory.check_fits(ref, cfg, "cuda")
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith("set train.micro_batch_size=16"), msg
    fake_gpu(monkeypatch, 1e-6)
    with pytest.raises(W2SError, match="does not fit even with checkpointing, bf16, LoRA"):
        memory.check_fits(ref, cfg, "cuda")
    fake_gpu(monkeypatch, 80)
    assert memory.check_fits(ref, cfg, "cuda") == memory.check_fits(ref, cfg, "cpu")


def test_advice_is_the_least_change_that_fits():
    """GPT-2-XL fully fine-tuned in fp32 at 32 x 512 tokens: 180 GB by the estimate. A smaller
    micro-batch comes first, then checkpointing, bf16, LoRA, alone and together."""
    arch = memory.published("openai-community/gpt2-xl")
    s = dict(mode="full", batch_size=32, seq_len=512, precision="fp32", micro_batch_size=None,
             checkpointing=False, lora_rank=8, last_k=2, weights="fp32")
    assert memory.advice(arch, s, 60e9) == "set train.micro_batch_size=4"
    assert memory.advice(arch, s, 35e9) == "set train.gradient_checkpointing=true train.micro_batch_size=8"
    assert memory.advice(arch, s, 30e9) == "set train.mode=lora train.micro_batch_size=4"
    assert "train.precision=bf16 train.mode=lora" in memory.advice(arch, s, 5e9)
    assert memory.advice(arch, s, 1e9, bf16=False) == (
        "it does not fit even with checkpointing, LoRA, micro-batches of 1: use a smaller model "
        "or lower features.max_length")


def test_lora_loads_its_frozen_base_in_bf16_only_on_a_gpu_in_bf16():
    assert memory.weights_dtype("lora", "bf16", "cuda") == "bf16"
    assert memory.weights_dtype("lora", "bf16", "cpu") == "fp32"
    assert memory.weights_dtype("lora", "fp32", "cuda") == "fp32"
    assert memory.weights_dtype("full", "bf16", "cuda") == "fp32"  # trained weights stay fp32


def test_probe_and_unreadable_models_have_no_estimate(tmp_path):
    from w2sgen.models import ModelRef

    cfg = load_config(None, ["train.mode=probe"])
    assert memory.check_fits(None, cfg, "cuda") is None
    cfg = load_config(None, ["train.mode=full", "train.precision=fp32"])
    assert memory.check_fits(ModelRef("x", "encoder", str(tmp_path), "x"), cfg, "cpu") is None
    cfg = load_config(None, ["train.mode=last_k", "train.gradient_checkpointing=true"])
    with pytest.raises(W2SError, match="train.gradient_checkpointing applies to"):
        memory.check_fits(ModelRef("x", "encoder", str(tmp_path), "x"), cfg, "cpu")


def test_label_tokens_counts_the_lm_head_and_no_linear_head(tiny_llama_dir):
    """label_tokens has no 2-class head; the tiny Llama's LM head is untied, so it adds vocab x
    hidden weights (frozen under LoRA, trained with adapter=none). The counts equal the loaded
    causal LM and its peft adapters; activations add the last position's vocabulary logits."""
    from w2sgen.lm.lora import add_lora

    ref = resolve(str(tiny_llama_dir))
    arch = memory.arch_of(ref)
    lm, _ = load(ref, lm_head=True)
    untied = arch.vocab * arch.hidden
    assert not arch.tied and numel(lm) == arch.params + untied
    r = 4
    cfg = load_config(None, ["train.mode=label_tokens", f"train.lora_rank={r}", "train.label_words=[bad, good]",
                             f"weak_model={tiny_llama_dir}", f"strong_model={tiny_llama_dir}"])
    assert numel(add_lora(lm, cfg.train), trainable=True) == r * arch.lora_per_rank
    kw = dict(batch_size=8, seq_len=16, precision="fp32")
    lora = memory.estimate(arch, "label_tokens", lora_rank=r, **kw)
    t = r * arch.lora_per_rank
    assert (lora.parameters, lora.gradients, lora.optimizer) == (4 * (arch.params + untied) + 4 * t, 4 * t, 12 * t)
    plain = memory.estimate(arch, "lora", lora_rank=r, **kw)
    assert lora.activations == plain.activations + 8 * (4 * arch.hidden + 8 * arch.vocab)
    full = memory.estimate(arch, "label_tokens", adapter="none", **kw)
    n = arch.params + untied
    assert (full.parameters, full.gradients, full.optimizer) == (4 * n, 4 * n, 12 * n)
    assert "label_tokens (LoRA), fp32" in lora.line() and "label_tokens (all weights)" in full.line()


def test_label_tokens_loads_in_bf16_under_lora_and_advises_lora():
    assert memory.weights_dtype("label_tokens", "bf16", "cuda") == "bf16"
    assert memory.weights_dtype("label_tokens", "bf16", "cuda", adapter="none") == "fp32"
    assert memory.weights_dtype("label_tokens", "bf16", "cpu") == "fp32"
    arch = memory.published("Qwen/Qwen2.5-7B")
    s = dict(mode="label_tokens", batch_size=32, seq_len=512, precision="bf16", micro_batch_size=None,
             checkpointing=True, lora_rank=8, last_k=2, weights="fp32", adapter="none")
    assert memory.advice(arch, s, 70e9).startswith("set train.adapter=lora")


# ------------------------------------------------ a training mode declares its estimate (or none)


@pytest.fixture
def plugin_modes(monkeypatch):
    """Two plugin modes: one that declares no memory estimate, one that trains like `full`."""
    from w2sgen.train import MODES, FineTuneLearner

    class Unplanned(FineTuneLearner):
        memory_estimate = None

    class FullLike(FineTuneLearner):
        memory_estimate = "full"

    MODES.items()  # plugins loaded first
    monkeypatch.setitem(MODES._items, "unplanned_for_test", Unplanned)
    monkeypatch.setitem(MODES._items, "full_like_for_test", FullLike)


def test_a_mode_without_an_estimate_says_so_and_is_not_refused(plugin_modes, tiny_llama_dir, monkeypatch,
                                                               capsys, tmp_path):
    from w2sgen.preflight import check_memory

    ref = resolve(str(tiny_llama_dir))
    arch = memory.arch_of(ref)
    assert memory.estimate(arch, "unplanned_for_test", batch_size=8, seq_len=16) is None  # no raise
    assert memory.estimate(arch, "full", batch_size=8, seq_len=16).total > 0
    keys = ["train.batch_size=64", "features.max_length=64", "train.precision=fp32"]
    unplanned = load_config(None, [*keys, "train.mode=unplanned_for_test"])
    full_like = load_config(None, [*keys, "train.mode=full_like_for_test"])
    full = load_config(None, [*keys, "train.mode=full"])
    assert memory.check_fits(ref, unplanned, "cpu") is None  # no estimate: nothing refused
    fake_gpu(monkeypatch, 1e-6)  # a GPU nothing fits on
    check_memory(ref, unplanned, "cuda", "train", quiet=False)  # not refused: said instead
    assert "train.mode=unplanned_for_test has no memory estimate" in capsys.readouterr().err
    with pytest.raises(W2SError, match="needs ~"):  # the declared estimate is checked
        check_memory(ref, full_like, "cuda", "train", quiet=True)
    assert memory.check_fits(ref, full_like, "cpu", mode="full").total == \
        memory.check_fits(ref, full, "cpu").total
    # a suite's estimate: the mode without one is a row that says so
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"base:\n  weak_model: {tiny_llama_dir}\n  strong_model: {tiny_llama_dir}\n"
                     "  features: {max_length: 32}\n  train: {precision: fp32}\n"
                     "grid:\n  pairs:\n    - {label: a, train.mode: unplanned_for_test}\n"
                     "    - {label: b, train.mode: full_like_for_test}\n")
    rows = sweep.memory_estimates(str(suite))
    assert [(r.pair, r.estimate is None) for r in rows] == [("a", True), ("b", False)]
    assert rows[1].estimate is not None and rows[1].estimate.setting.startswith("full, fp32")


def test_a_model_too_large_for_the_ram_is_one_line_exit_2_before_anything_runs(
        tiny_llama_dir, tmp_path, monkeypatch, capsys):
    """On the CPU the training estimate is held against the machine's RAM (W2S_RAM_BYTES stands
    in for a small machine), and a probe's model against its fp32 weights: `w2s run` and `w2s
    sweep` (also --dry-run) refuse in one line, exit 2, with nothing recorded."""
    import yaml

    from w2sgen.cli import main
    from w2sgen.store import Store

    ref = resolve(str(tiny_llama_dir))
    full = load_config(None, ["train.mode=full", "train.batch_size=64", "features.max_length=64",
                              "train.precision=fp32"])
    need = memory.check_fits(ref, full, "cpu").total
    weights = memory.arch_of(ref).params * 4
    assert memory.check_loads(ref, "cpu") == weights < need
    # RAM between the weights and the training estimate: the probe runs, full training does not
    monkeypatch.setenv("W2S_RAM_BYTES", str(int((weights + need) / 2 / memory.HEADROOM)))
    with pytest.raises(W2SError) as err:
        memory.check_fits(ref, full, "cpu")
    msg = str(err.value)
    assert "\n" not in msg and f"needs ~{memory._gb(need)} by estimate" in msg
    assert "but this machine's" in msg and "of RAM has" in msg and "to use: set train." in msg
    assert memory.check_loads(ref, "cpu") == weights
    store = tmp_path / "store"
    over = [f"weak_model={tiny_llama_dir}", f"strong_model={tiny_llama_dir}", "task=rt_sentiment",
            "features.max_length=64", "train.batch_size=64", "train.precision=fp32"]
    assert main(["run", *over, "train.mode=full", "--store", str(store)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert len(err_lines) == 1 and err_lines[0].startswith(f"error: training {ref.name} needs")
    assert Store(store).runs() == []  # nothing recorded
    suite = tmp_path / "s.yaml"
    base = {"weak_model": str(tiny_llama_dir), "strong_model": str(tiny_llama_dir), "task": "rt_sentiment",
            "features": {"max_length": 64}, "train": {"mode": "full", "batch_size": 64, "precision": "fp32"},
            "weak_train": {"mode": "probe"}}
    suite.write_text(yaml.safe_dump({"base": base, "grid": {"seeds": [0, 1]}}))
    for dry in (["--dry-run"], []):
        assert main(["sweep", str(suite), "--store", str(store), *dry]) == 2
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and "2 invalid cell(s), nothing was run" in err_lines[0]
        assert f"needs ~{memory._gb(need)} by estimate" in err_lines[0]
    assert Store(store).runs() == []
    # less RAM than the weights: even the probe (features) is refused, naming the model
    monkeypatch.setenv("W2S_RAM_BYTES", str(int(weights / 2)))
    assert main(["run", *over, "train.mode=probe", "--store", str(store)]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines == [f"error: model {ref.name!r} needs ~{memory._gb(weights)} for its "
                         f"fp32 weights alone but this machine's {memory._gb(weights / 2)} of RAM has "
                         f"{memory._gb(weights / 2 * memory.HEADROOM)} to use; use a smaller model or "
                         "a machine with more memory"]
    assert Store(store).runs() == []
