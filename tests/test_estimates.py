"""`w2s sweep --dry-run`'s time estimate (FLOPs / the machine's measured rate) and `--max-hours`."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from w2sgen import hardware, sweep
from w2sgen.cli import main
from w2sgen.models import load, resolve
from w2sgen.sweep import estimates

MACHINE = hardware.Probe("cpu", "test CPU", "AVX512", 2, True, fp32_gflops=100.0, bf16_gflops=300.0)


def suite_file(tmp_path: Path, weak: Path, strong: Path, train: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny",
        "base": {"task": "rt_sentiment", "weak_model": str(weak), "strong_model": str(strong),
                 "splits": {"weak_train": 40, "transfer": 40, "test": 60},
                 "features": {"max_length": 32}, "train": train},
        "grid": {"methods": [{"name": "naive", "method": "naive"},
                             {"name": "logconf", "method": "naive", "loss": "logconf"}]}}))
    return path


def compute_params(path: Path) -> int:
    """Every weight but the token-embedding table, counted on the loaded model."""
    model, _ = load(resolve(str(path)))
    table = model.get_input_embeddings().weight
    return sum(p.numel() for p in model.parameters()) - table.numel()


def test_last_k_cells_cost_their_flops_at_the_measured_rate(tmp_path, tiny_bert_dir, tiny_llama_dir):
    path = suite_file(tmp_path, tiny_bert_dir, tiny_llama_dir,
                      {"mode": "last_k", "last_k": 1, "epochs": 3, "precision": "bf16"})
    suite = sweep.load_suite(path, str(tmp_path / "store"))
    assert len(suite.cells) == 2
    cost = sweep.time_estimates(suite.cells, MACHINE)
    tokens = estimates.split_tokens(suite.cells[0].cfg, {})
    wt, tr, te = tokens["weak_train"], tokens["transfer"], tokens["test"]
    assert 40 * 3 <= wt <= 40 * 32 and 60 * 3 <= te <= 60 * 32  # every example 3..32 tokens
    weak, strong = compute_params(tiny_bert_dir), compute_params(tiny_llama_dir)
    assert estimates.shape_of(str(tiny_bert_dir)).compute_params == weak
    fp32, bf16 = 100e9 * 0.5, 300e9 * 0.5  # the rate a whole model reaches: half the peak

    # both tiny models have 2 blocks: last_k=1 trains one (bf16) on the hidden states of the
    # other, computed once per model and split in fp32 (shared by every step that reads them)
    def frozen(params: int, seen: float) -> float:
        return 2 * (params / 2) * seen / fp32

    def trains(params: int, train: float, seen: float) -> float:
        return (6 * (params / 2) * train * 3 + 2 * (params / 2) * seen) / bf16

    student = trains(strong, tr, tr + te)  # the ceiling costs the same
    first, second = cost.cells
    assert first.seconds == pytest.approx(
        frozen(weak, wt + tr + te) + trains(weak, wt, wt + tr + te)
        + frozen(strong, tr + te) + 2 * student, rel=1e-9)
    assert first.steps == 3 + 1 + 2 + 2  # weak: 3 splits + training; strong: 2 splits, ceiling, student
    # the second method shares weak supervisor, frozen passes and ceiling: its student only
    assert (second.seconds, second.steps) == (pytest.approx(student, rel=1e-9), 1)
    assert cost.total == pytest.approx(first.seconds + second.seconds)
    # the first cell finished: its steps are cached, the second still trains its own student
    left = sweep.time_estimates(suite.cells, MACHINE, skip=frozenset({0}))
    assert [c.seconds for c in left.cells] == [0.0, pytest.approx(student, rel=1e-9)]


def test_probe_cells_cost_the_features_once(tmp_path, tiny_bert_dir, tiny_llama_dir):
    path = suite_file(tmp_path, tiny_bert_dir, tiny_llama_dir, {"mode": "probe"})
    suite = sweep.load_suite(path, str(tmp_path / "store"))
    cost = sweep.time_estimates(suite.cells, MACHINE)
    t = estimates.split_tokens(suite.cells[0].cfg, {})
    fp32 = 100e9 * 0.5  # features.precision auto is fp32 on a CPU
    want = (2 * compute_params(tiny_bert_dir) * (t["weak_train"] + t["transfer"] + t["test"])
            + 2 * compute_params(tiny_llama_dir) * (t["transfer"] + t["test"])) / fp32
    assert cost.cells[0].seconds == pytest.approx(want, rel=1e-9)
    assert cost.cells[0].steps == 5  # features: weak on 3 splits, strong on 2
    assert cost.cells[1].seconds == 0.0  # the second method reads the same features


def test_max_hours_refuses_a_suite_over_its_estimate_before_anything_runs(
        tmp_path, tiny_bert_dir, tiny_llama_dir, monkeypatch, capsys):
    monkeypatch.setitem(hardware._PROBES, "cpu", MACHINE)
    path = suite_file(tmp_path, tiny_bert_dir, tiny_llama_dir,
                      {"mode": "last_k", "last_k": 1, "epochs": 3, "precision": "bf16"})
    store = tmp_path / "store"
    seconds = sweep.time_estimates(sweep.load_suite(path, str(store)).cells, MACHINE).total
    assert main(["sweep", str(path), "--store", str(store), "--max-hours", f"{seconds / 3600 / 2:.3g}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: suite tiny is estimated at ")
    assert "over --max-hours" in err[0]
    assert not (store / "runs.sqlite").exists()  # nothing ran
    # the dry run prints each cell's estimate and the total, and passes a limit it is under
    assert main(["sweep", str(path), "--store", str(store), "--dry-run", "--max-hours", "1"]) == 0
    out = capsys.readouterr().out
    assert f"estimated time to run: {sweep.hours(seconds)} (" in out and "test CPU" in out
    assert out.count("  ~") == 2


def test_a_model_without_a_shape_leaves_its_cells_unestimated_and_max_hours_refuses(
        tmp_path, tiny_bert_dir, tiny_llama_dir, monkeypatch, capsys):
    from w2sgen.errors import W2SError

    real = estimates.shape_of

    def shape_of(name):
        if name == str(tiny_llama_dir):
            raise W2SError("its config names no transformer blocks\nsecond line")
        return real(name)

    monkeypatch.setattr(estimates, "shape_of", shape_of)
    monkeypatch.setitem(hardware._PROBES, "cpu", MACHINE)
    path = suite_file(tmp_path, tiny_bert_dir, tiny_llama_dir, {"mode": "probe"})
    store = str(tmp_path / "store")
    cost = sweep.time_estimates(sweep.load_suite(path, store).cells, MACHINE)
    assert cost.unknown == [f"no estimate for {tiny_llama_dir}: its config names no transformer blocks"]
    assert cost.cells[0].seconds > 0  # the weak model's features are still counted
    assert main(["sweep", str(path), "--store", store, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.count("         ?  ") == 2 and "(2 without: ?)" in out
    assert main(["sweep", str(path), "--store", store, "--max-hours", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --max-hours needs an estimate of every cell; no estimate for "
                   f"{tiny_llama_dir}: its config names no transformer blocks"]


def test_dry_run_lines_fit_100_columns_with_long_model_names():
    """Labels that do not fit move their leading grid values into heading lines, as few as
    needed; labels that fit stay whole."""
    from w2sgen.sweep.plan import grouped

    cols = "     1  4aaeb255dacef35d  to run                ~2.2 h  "
    long_pair = "minilm-l3->qwen2.5-coder-0.5b-instruct"
    rows = [(cols, [task, long_pair, method, f"seed {seed}"])
            for task in ("rt_sentiment", "nyt_sentiment") for method in ("naive", "icl_refine_self_k4")
            for seed in (0, 1)]
    lines = grouped(rows)
    assert max(map(len, lines)) <= 100
    assert lines[0] == f"rt_sentiment | {long_pair}" and lines[1] == cols + "naive | seed 0"
    assert lines[5] == f"nyt_sentiment | {long_pair}" and len(lines) == 8 + 2
    short = [(cols, ["rt", "a->b", "naive", "seed 0"])]
    assert grouped(short) == [cols + "rt | a->b | naive | seed 0"]


H100 = "NVIDIA H100 80GB HBM3"


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """torch sees an H100 (85e9 bytes), nothing may be measured on it, and the data home's
    hardware.json is the test's (empty until a test writes it)."""
    import json
    from types import SimpleNamespace

    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: H100)
    monkeypatch.setattr(torch.cuda, "get_device_properties",
                        lambda *a: SimpleNamespace(name=H100, total_memory=85_000_000_000, major=9, minor=0))
    monkeypatch.setattr(hardware, "home", lambda: tmp_path / "home")
    monkeypatch.setattr(hardware, "_PROBES", {})
    monkeypatch.setattr(hardware, "_NATIVE", {})
    monkeypatch.setattr(hardware, "measure", lambda device: pytest.fail(f"{device} measured"))

    def record(**figures):
        from dataclasses import asdict

        probe = hardware.Probe("cuda", H100, "sm_90", 16, True, **figures)
        (tmp_path / "home").mkdir(exist_ok=True)
        (tmp_path / "home" / "hardware.json").write_text(json.dumps({"0123456789abcdef": asdict(probe)}))
        return probe

    return record


def gpu_suite(tmp_path, weak, strong, train) -> Path:
    path = suite_file(tmp_path, weak, strong, train)
    raw = yaml.safe_load(path.read_text())
    raw["base"]["device"] = "cuda"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_gpu_suite_is_estimated_with_the_gpus_recorded_measurement(
        tmp_path, tiny_bert_dir, tiny_llama_dir, fake_gpu, capsys):
    measured = fake_gpu(fp32_gflops=40_000.0, bf16_gflops=600_000.0, memory_bytes=80 * 2**30,
                        measured_at=1_700_000_000)  # what gpu_check.py / w2s doctor record
    path = gpu_suite(tmp_path, tiny_bert_dir, tiny_llama_dir,
                     {"mode": "last_k", "last_k": 1, "epochs": 3, "precision": "bf16"})
    cells = sweep.load_suite(path, str(tmp_path / "store")).cells
    figures, where = hardware.gpu_figures()
    assert figures == measured and where == f"GPU {H100}: measured on 2023-11-14 (hardware.json)"
    cost = sweep.time_estimates(cells, gpu=(figures, where))
    assert cost.total == pytest.approx(sweep.time_estimates(cells, measured).total, rel=1e-12)
    sheet = hardware.nominal(H100)
    assert (sheet.bf16_gflops, sheet.fp32_gflops) == (989_000.0, 67_000.0)
    assert cost.total > 1.5 * sweep.time_estimates(cells, sheet).total  # not the data sheet's
    assert main(["sweep", str(path), "--store", str(tmp_path / "store"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert (f"GPU {H100}: measured on 2023-11-14 (hardware.json): bf16 600 TFLOP/s, fp32 40 "
            "TFLOP/s, memory 80 GiB") in out
    assert f"memory: the largest model a GPU cell trains, {tiny_llama_dir} (last_k" in out
    assert "of the 77.3 GB NVIDIA H100 80GB HBM3 leaves to use" in out  # 0.9 x 80 GiB


def test_without_a_measurement_the_estimate_says_it_used_the_cards_data_sheet_peak(
        tmp_path, tiny_bert_dir, tiny_llama_dir, fake_gpu, capsys):
    path = gpu_suite(tmp_path, tiny_bert_dir, tiny_llama_dir, {"mode": "full", "epochs": 1})
    cells = sweep.load_suite(path, str(tmp_path / "store")).cells
    figures, where = hardware.gpu_figures()
    assert (figures.bf16_gflops, figures.memory_bytes) == (989_000.0, 85_000_000_000)
    assert where.startswith(f"GPU {H100}: its nominal data-sheet peak, not a measurement")
    assert sweep.time_estimates(cells, gpu=(figures, where)).total == pytest.approx(
        sweep.time_estimates(cells, figures).total, rel=1e-12)
    assert main(["sweep", str(path), "--store", str(tmp_path / "store"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"GPU {H100}: its nominal data-sheet peak, not a measurement (`w2s doctor` or " in out
    assert "bf16 989 TFLOP/s, fp32 67 TFLOP/s, memory 79 GiB" in out


def test_a_model_over_the_recorded_gpus_memory_is_named_in_the_dry_run(
        tmp_path, tiny_bert_dir, tiny_llama_dir, fake_gpu, capsys):
    fake_gpu(fp32_gflops=40_000.0, bf16_gflops=600_000.0, memory_bytes=1_000_000,
             measured_at=1_700_000_000)  # a 1 MB card: the tiny models do not fit
    path = gpu_suite(tmp_path, tiny_bert_dir, tiny_llama_dir, {"mode": "full", "epochs": 1})
    assert main(["sweep", str(path), "--store", str(tmp_path / "store"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"memory: 2 model setting(s) would not fit {H100}:" in out
    lines = [x for x in out.splitlines() if x.startswith("  memory, cell 1: training ")]
    assert lines == [
        f"  memory, cell 1: training {tiny_bert_dir} (the weak supervisor) needs ~2.5 MB by estimate "
        "(parameters 0.1 MB + gradients 0.1 MB + optimizer 0.2 MB + activations 2.1 MB; full, bf16, "
        f"batch 32 x 32 tokens) but {H100} has 0.9 MB to use: set weak_train.micro_batch_size=4",
        f"  memory, cell 1: training {tiny_llama_dir} needs ~2.9 MB by estimate (parameters 0.1 MB + "
        "gradients 0.1 MB + optimizer 0.2 MB + activations 2.5 MB; full, bf16, batch 32 x 32 tokens) "
        f"but {H100} has 0.9 MB to use: set train.micro_batch_size=4"], out


def test_a_gpu_measurement_is_recorded_whatever_the_cpus_load(fake_gpu, monkeypatch):
    """What `w2s doctor` and benchmarks/gpu_check.py do on a CUDA machine (hardware.probe):
    the GPU's rates and memory go to hardware.json even while the CPU is busy (the GPU's
    products do not compete with it), and the estimate reads them from there."""
    taken = hardware.Probe("cuda", H100, "sm_90", 16, True, 50_000.0, 700_000.0, 85_000_000_000)
    monkeypatch.setattr(hardware, "measure", lambda device: taken)
    monkeypatch.setattr(hardware, "_busy", lambda: True)
    p = hardware.probe("cuda", refresh=True)
    assert p.measured_at is not None and p.bf16_gflops == 700_000.0
    assert hardware.recorded_gpus() == [p]
    monkeypatch.setattr(hardware, "_PROBES", {})  # a later process
    monkeypatch.setattr(hardware, "measure", lambda device: pytest.fail("measured again"))
    assert hardware.gpu_figures()[0] == p
