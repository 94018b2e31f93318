"""Out of memory mid-run (injected: torch.cuda.OutOfMemoryError in a training step, the CPU
allocator's RuntimeError in feature extraction, one outside any step): one line naming the
model, the step and its settings and what to try, exit 2, and the steps finished before it
stay cached (the rerun reads them back). A tiny BERT; seconds."""
from __future__ import annotations

import pytest
import torch
from conftest import sentiment_examples

from w2sgen import context, features, oom, pipeline
from w2sgen.cli import main
from w2sgen.store import Store
from w2sgen.train import MODES


@pytest.fixture
def run_args(tmp_path, tiny_bert_dir) -> list[str]:
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(300)))
    return ["--store", str(tmp_path / "store"), f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=60", "splits.transfer=60", "splits.test=100", "eval.bootstrap=50",
            "features.max_length=16", "device=cpu", "train.mode=full", "train.epochs=1",
            "train.batch_size=16", "weak_train.mode=probe"]


def one_error_line(capsys) -> str:
    err = [x for x in capsys.readouterr().err.strip().splitlines() if not x.startswith("note: ")]
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_a_gpu_out_of_memory_while_training_is_one_line_and_keeps_the_cached_steps(
        run_args, tmp_path, tiny_bert_dir, monkeypatch, capsys):
    full = MODES.get("full")
    real_fit = full.fit

    def fit(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; "
                                          "79.19 GiB total capacity; 77.50 GiB already allocated)")

    monkeypatch.setattr(full, "fit", fit)
    assert main(["run", *run_args]) == 2
    line = one_error_line(capsys)
    # the ceiling (the strong model on ground truth, the first full fine-tuning) is where it fails
    assert line.startswith(f"error: out of GPU memory training {tiny_bert_dir} (train.mode=full, "
                           "train.batch_size=16) on cpu: try train.micro_batch_size=8, "
                           "train.gradient_checkpointing=true, train.mode=lora, a lower "
                           "features.max_length or a smaller model (one at a time); the steps "
                           "finished before it stay cached and are re-used [CUDA out of memory."), line
    store = Store(tmp_path / "store")
    (run,) = store.runs()
    assert run["status"] == "failed" and "out of GPU memory training" in run["error"]
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "store" / "cache").rglob("*.npz")}
    assert len(before) >= 4  # the features of both models' splits and the weak supervisor
    assert {p.parent.name for p in (tmp_path / "store" / "cache").rglob("*.npz")} == {"features", "train"}

    monkeypatch.setattr(full, "fit", real_fit)  # memory to spare: the run finishes ...
    assert main(["run", *run_args]) == 0
    (_, done) = Store(tmp_path / "store").runs()
    assert done["status"] == "done"
    assert done["timings"]["weak_supervisor"]["cached"]  # ... re-using what the failed run cached
    assert all(t["cached"] for k, t in done["timings"].items() if k.startswith("features"))
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "store" / "cache").rglob("*.npz")}
    assert all(after[name] == t for name, t in before.items())  # nothing rewritten


def test_the_cpu_allocator_failing_in_feature_extraction_is_one_line(
        run_args, tiny_bert_dir, monkeypatch, capsys):
    def extract(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: not "
                           "enough memory: you tried to allocate 1073741824 bytes.")

    monkeypatch.setattr(features, "extract", extract)
    monkeypatch.setattr(context.onnx_features, "available", lambda: False)  # torch's path
    assert main(["run", *run_args, "features.batch_size=64"]) == 2
    line = one_error_line(capsys)
    assert line.startswith(f"error: out of CPU memory extracting features of {tiny_bert_dir} ("), line
    assert ("(features.batch_size=64, features.max_length=16) on cpu: try features.batch_size=32 or a "
            "lower features.max_length") in line and "DefaultCPUAllocator: not enough memory" in line


def test_out_of_memory_outside_a_named_step_is_one_line_and_other_errors_are_not_hidden(
        run_args, monkeypatch, capsys):
    def evaluate(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(pipeline, "evaluate", evaluate)
    assert main(["run", *run_args, "train.mode=probe"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: out of memory (MemoryError); lower train.batch_size or set "
                           "train.micro_batch_size"), line
    assert not oom.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert oom.is_out_of_memory(torch.cuda.OutOfMemoryError("x"))


def test_the_advice_follows_the_settings():
    from w2sgen.config import TrainConfig

    t = TrainConfig(mode="lora", batch_size=32, micro_batch_size=8, gradient_checkpointing=True,
                    precision="fp32")
    assert oom.train_advice(t, "weak_train", "cuda:0") == (
        "weak_train.micro_batch_size=4, weak_train.precision=bf16, a lower features.max_length "
        "or a smaller model")
    assert oom.train_settings(t, "weak_train") == (
        "weak_train.mode=lora, weak_train.batch_size=32, weak_train.micro_batch_size=8, "
        "weak_train.gradient_checkpointing=true")
    t = TrainConfig(mode="label_tokens", batch_size=1, adapter="none")
    assert oom.train_advice(t, "train", "cpu") == (
        "train.gradient_checkpointing=true, train.adapter=lora, a lower features.max_length or a "
        "smaller model")
