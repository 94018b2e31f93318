"""The CUDA path, on tiny in-memory models: skipped where torch sees no GPU (CI never has one)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import pipeline
from w2sgen.validate import load_config

DEVICES = ("cuda", "cpu")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.mark.parametrize("mode", ["probe", "full", "lora"])
def test_pipeline_runs_on_the_gpu_and_agrees_with_the_cpu(mode, tmp_path, tiny_bert_dir, tiny_llama_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(800)))
    base = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_llama_dir}",
            "splits.weak_train=100", "splits.transfer=100", "splits.test=200", f"train.mode={mode}",
            "train.epochs=3", "eval.bootstrap=100", "features.precision=fp32", "features.max_length=32"]
    out = {}
    for device in DEVICES:
        cfg = load_config(None, [*base, f"device={device}", f"store={tmp_path / device}"])
        out[device] = pipeline.run(cfg, quiet=True)["metrics"]
    for k in ("weak", "student", "ceiling"):
        gpu, cpu = out["cuda"][f"{k}_auc"]["value"], out["cpu"][f"{k}_auc"]["value"]
        assert np.isfinite(gpu) and abs(gpu - cpu) < 0.05, (k, gpu, cpu)


@pytest.fixture(scope="module")
def llama_512_dir(tmp_path_factory):
    """A Llama of 4 blocks at d=512 (11.6M parameters): at 16 x 128 tokens its parameter,
    gradient and optimizer state (~230 MB in fp32) and its activations (~350 MB) are of
    the same size, so the comparison below tests both halves of the estimate."""
    from conftest import save_llama

    return save_llama(tmp_path_factory.mktemp("llama-512"), hidden_size=512, num_hidden_layers=4,
                      num_attention_heads=8, num_key_value_heads=4, intermediate_size=1376,
                      max_position_embeddings=256)


@pytest.mark.parametrize("mode,precision,checkpointing", [
    ("full", "fp32", False), ("full", "bf16", False), ("full", "bf16", True),
    ("lora", "bf16", False), ("lora", "bf16", True), ("lora", "fp32", False)])
def test_memory_estimate_against_the_cuda_peak(mode, precision, checkpointing, llama_512_dir):
    """The estimate of one training step against torch.cuda.max_memory_allocated, within
    0.5x-1.3x. Why that band: the estimate adds the step's optimizer state to all of the
    forward's activations, which never coexist (the activations are freed by the time AdamW
    allocates its state), so the real peak is the larger of the two phases plus transient
    buffers (the gradient of one layer's activations, kernel workspaces): below the estimate
    or a little above it. With both halves of comparable size here, the larger phase is at
    least ~60% of their sum; a missing term (an optimizer moment, a layer's MLP) or a double
    count moves the ratio out of the band."""
    import random

    from w2sgen import hardware, memory
    from w2sgen.losses import xent
    from w2sgen.models import resolve
    from w2sgen.tasks import Example
    from w2sgen.train import MODES

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    hardware.probe("cuda")  # its benchmark allocates: measured before the peak is reset
    rng = random.Random(0)
    from conftest import WORDS
    data = [Example(f"e{i}", " ".join(rng.choice(WORDS) for _ in range(300)), i % 2) for i in range(16)]
    cfg = load_config(None, [f"train.mode={mode}", f"train.precision={precision}", "device=cuda",
                             f"train.gradient_checkpointing={str(checkpointing).lower()}",
                             "train.batch_size=16", "train.epochs=1", "features.max_length=128"])
    ref = resolve(str(llama_512_dir))
    est = memory.plan(ref, cfg, "cuda")
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    learner = MODES.get(mode)(ref, cfg)
    learner.fit(data, np.array([e.label for e in data], np.float32), xent(), seed=0, desc="mem")
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - before
    del learner
    torch.cuda.empty_cache()
    ratio = peak / est.total
    print(f"{mode} {precision} checkpointing={checkpointing}: peak {peak / 1e6:.0f} MB, "
          f"{est.line()}, ratio {ratio:.2f}")
    assert 0.5 < ratio < 1.3, (peak, est.line())
