"""The training loop and its three modes, on synthetic data and tiny in-memory models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen.errors import TrainingDiverged, W2SError
from w2sgen.losses import LOSSES, xent
from w2sgen.models import resolve
from w2sgen.train import MODES, ProbeLearner
from w2sgen.validate import load_config


def linear_data(n=600, d=20, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32) * 3 + 5  # off-centre: standardisation matters
    w = rng.normal(size=d)
    y = ((x - 5) @ w > 0).astype(np.float32)
    return x, y


def test_probe_learns_a_linear_rule_and_is_deterministic():
    cfg = load_config(None, ["train.epochs=20", "train.lr=0.02"])
    x, y = linear_data()
    a = ProbeLearner(None, cfg)
    hist = a.fit(x[:400], y[:400], xent(), seed=3, desc="t", eval_set=(x[400:], y[400:]))
    acc = ((a.predict(x[400:]) > 0.5) == y[400:]).mean()
    assert acc > 0.93
    assert hist.loss[-1] < hist.loss[0] * 0.5
    assert len(hist.eval_accuracy) == 20 and hist.eval_accuracy[-1] == pytest.approx(acc)
    b = ProbeLearner(None, cfg)
    b.fit(x[:400], y[:400], xent(), seed=3, desc="t")
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    c = ProbeLearner(None, cfg)
    c.fit(x[:400], y[:400], xent(), seed=4, desc="t")
    assert not np.array_equal(a.predict(x), c.predict(x))


def test_soft_labels_are_learned_as_probabilities():
    """Trained on constant soft targets of 0.8, a probe must predict about 0.8, not 1."""
    cfg = load_config(None, ["train.epochs=30", "train.weight_decay=0", "train.lr=0.05"])
    x, _ = linear_data(300)
    p = ProbeLearner(None, cfg)
    p.fit(x, np.full(300, 0.8, np.float32), xent(), seed=0, desc="t")
    assert np.mean(p.predict(x)) == pytest.approx(0.8, abs=0.03)


def test_nan_loss_stops_with_a_clear_error():
    cfg = load_config(None, ["train.epochs=2"])
    x, y = linear_data(100)

    def nan_loss(logits, target, progress):
        return logits.sum() * float("nan")

    with pytest.raises(TrainingDiverged, match="lower train.lr"):
        ProbeLearner(None, cfg).fit(x, y, nan_loss, seed=0, desc="weak")


def test_warmup_and_cosine_schedule_shape():
    """The learning rate ramps up over the warm-up steps and decays to ~0 at the end."""
    from w2sgen import learner as train_mod

    lrs = []
    cfg = load_config(None, ["train.epochs=4", "train.batch_size=10", "train.warmup_fraction=0.25"])
    x, y = linear_data(40)
    head = torch.nn.Linear(x.shape[1], 2)
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        xt = torch.as_tensor(x)
        train_mod.training_loop(list(head.parameters()), lambda i: head(xt[i]), y, xent(),
                                cfg.train, 0.1, 0, "t")
    finally:
        torch.optim.AdamW.step = real_step
    assert len(lrs) == 16
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert lrs[-1] < 0.01 and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


@pytest.mark.parametrize("mode,model", [("full", "tiny_bert_dir"), ("lora", "tiny_llama_dir")])
def test_finetune_modes_learn_a_toy_task(mode, model, request):
    path = request.getfixturevalue(model)
    ref = resolve(str(path))
    cfg = load_config(None, [f"train.mode={mode}", "train.epochs=8", "train.batch_size=16",
                             "train.lr=0.003", "features.max_length=16"])
    data = sentiment_examples(96)
    y = np.array([e.label for e in data], np.float32)
    learner = MODES.get(mode)(ref, cfg)
    hist = learner.fit(data[:64], y[:64], xent(), seed=0, desc=mode)
    assert hist.loss[-1] < hist.loss[0]
    acc = ((learner.predict(data[64:]) > 0.5) == y[64:]).mean()
    assert acc >= 0.75, acc
    if mode == "lora":
        trainable = sum(p.numel() for p in learner.model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in learner.model.parameters())
        assert trainable < 0.5 * total  # adapters and head only


def test_xent_value_and_gradient_direction():
    logits = torch.tensor([[0.0, 0.0], [2.0, 0.0]], requires_grad=True)
    target = torch.tensor([1.0, 0.25])
    loss = LOSSES.get("xent")()(logits, target, 0.0)
    log_p1 = -np.log(1 + np.exp(2.0))  # log softmax of class 1 in row 2
    log_p0 = -np.log(1 + np.exp(-2.0))
    expected = (np.log(2) + -(0.75 * log_p0 + 0.25 * log_p1)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert logits.grad[0, 1] < 0 < logits.grad[0, 0]  # pushes row 1 toward class 1


def test_micro_batches_give_the_whole_batch_gradient():
    """Gradient accumulation: micro-batches of 4 (uneven: batches of 10 and a last of 7, items
    of unequal weight, as token counts are) give the parameters of whole batches, in fp32."""
    from w2sgen.learner import optimise

    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.normal(size=(37, 6)), dtype=torch.float32)
    y = torch.as_tensor(rng.normal(size=37), dtype=torch.float32)
    w = torch.as_tensor(rng.integers(1, 9, size=37), dtype=torch.float32)

    def trained(micro):
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

        def batch_loss(idx, progress):
            err = (net(x[idx]).squeeze(-1) - y[idx]) ** 2
            return (err * w[idx]).sum() / w[idx].sum(), int(w[idx].sum())

        hist = optimise(list(net.parameters()), batch_loss, 37, epochs=3, batch_size=10, lr=0.01,
                        weight_decay=0.01, seed=1, desc="t", clip_norm=1.0, micro_batch_size=micro)
        return torch.cat([p.detach().flatten() for p in net.parameters()]), hist.loss

    whole, whole_loss = trained(None)
    accumulated, acc_loss = trained(4)
    torch.testing.assert_close(accumulated, whole, atol=1e-6, rtol=0)
    assert acc_loss == pytest.approx(whole_loss, rel=1e-6)
    same, _ = trained(10)  # a micro-batch of the whole batch is the whole-batch path
    assert torch.equal(same, whole)


def test_lora_with_micro_batches_and_checkpointing_matches_plain_lora(tiny_llama_dir, capfd):
    """The tiny Llama has no dropout, so in fp32 neither accumulation nor recomputing the
    activations in backward changes what is learned; the estimate is printed first."""
    ref = resolve(str(tiny_llama_dir))
    data = sentiment_examples(40)
    y = np.array([e.label for e in data], np.float32)
    base = ["train.mode=lora", "train.epochs=2", "train.batch_size=16", "train.lr=0.003",
            "features.max_length=16", "train.precision=fp32"]
    preds = {}
    for name, extra in [("plain", []), ("micro", ["train.micro_batch_size=4"]),
                        ("checkpointing", ["train.gradient_checkpointing=true"])]:
        learner = MODES.get("lora")(ref, load_config(None, base + extra))
        learner.fit(data[:32], y[:32], xent(), seed=0, desc=name)
        preds[name] = learner.predict(data[32:])
        recomputes = [m.gradient_checkpointing for m in learner.model.modules()
                      if hasattr(m, "gradient_checkpointing")]
        assert any(recomputes) == (name == "checkpointing")
    np.testing.assert_allclose(preds["micro"], preds["plain"], atol=1e-5)
    np.testing.assert_allclose(preds["checkpointing"], preds["plain"], atol=1e-5)
    err = capfd.readouterr().err
    assert "memory estimate: " in err and "checkpointing)" in err and "micro-batches of 4" in err


def test_checkpointing_an_unsupported_architecture_is_a_clear_error(tiny_bert_dir, monkeypatch):
    from transformers import BertModel

    monkeypatch.setattr(BertModel, "supports_gradient_checkpointing", False)
    cfg = load_config(None, ["train.mode=full", "train.gradient_checkpointing=true",
                             "train.precision=fp32", "features.max_length=16"])
    data = sentiment_examples(8)
    with pytest.raises(W2SError, match="set train.gradient_checkpointing=false"):
        MODES.get("full")(resolve(str(tiny_bert_dir)), cfg).fit(
            data, np.zeros(8, np.float32), xent(), seed=0, desc="t")


def test_full_trains_under_bf16_autocast_with_fp32_weights(tiny_bert_dir):
    ref = resolve(str(tiny_bert_dir))
    data = sentiment_examples(48)
    y = np.array([e.label for e in data], np.float32)
    out = {}
    for precision in ("fp32", "bf16"):
        cfg = load_config(None, ["train.mode=full", "train.epochs=2", "train.batch_size=16",
                                 "train.lr=0.003", "features.max_length=16",
                                 f"train.precision={precision}"])
        learner = MODES.get("full")(ref, cfg)
        hist = learner.fit(data[:32], y[:32], xent(), seed=0, desc=precision)
        assert np.isfinite(hist.loss).all()
        assert all(p.dtype == torch.float32 for p in learner.model.parameters())
        out[precision] = learner.predict(data[32:])
    diff = np.abs(out["bf16"] - out["fp32"]).max()
    assert 0 < diff < 0.1  # bf16 rounding, nothing more


def test_fp16_on_a_cpu_is_refused(tiny_bert_dir):
    with pytest.raises(W2SError, match="fp16"):
        cfg = load_config(None, ["train.mode=full", "train.precision=fp16", "device=cpu"])
        MODES.get("full")(resolve(str(tiny_bert_dir)), cfg).fit(
            sentiment_examples(4), np.zeros(4, np.float32), xent(), seed=0, desc="t")


# ------------------------------------------------ train.select: weak_val (no ground truth)


def test_weak_val_keeps_the_epoch_with_the_best_auroc_against_weak_labels():
    """Held-out weak labels that are the *opposite* of what the probe learns: AUROC against
    them falls as training goes on, so the first epoch is kept, and its weights are restored
    (the final predictions are exactly those after epoch 1). With agreeing weak labels the
    best epoch is the argmax of the recorded AUROCs, and again its weights are the ones kept."""
    cfg = load_config(None, ["train.epochs=8", "train.lr=0.02"])
    x, y = linear_data(500)
    train, val, test = slice(0, 300), slice(300, 400), slice(400, 500)
    flipped = ProbeLearner(None, cfg)
    flipped.select_set = (x[val], 1 - y[val])
    hist = flipped.fit(x[train], y[train], xent(), seed=0, desc="t", eval_set=(x[test], y[test]))
    assert len(hist.select_auroc) == 8 and hist.selected_epoch == 1
    assert hist.select_auroc[0] == max(hist.select_auroc) and hist.select_auroc[-1] < 0.1
    np.testing.assert_array_equal(flipped.predict(x[test]), hist.eval_probs[0])
    plain = ProbeLearner(None, cfg)  # the same training without selection ends elsewhere
    plain_hist = plain.fit(x[train], y[train], xent(), seed=0, desc="t", eval_set=(x[test], y[test]))
    assert plain_hist.selected_epoch is None and plain_hist.select_auroc == []
    np.testing.assert_array_equal(plain.predict(x[test]), plain_hist.eval_probs[-1])
    assert not np.array_equal(plain_hist.eval_probs[0], plain_hist.eval_probs[-1])

    noisy = (y[val] + (np.random.default_rng(1).random(100) < 0.3)) % 2  # 30% of weak labels wrong
    agree = ProbeLearner(None, cfg)
    agree.select_set = (x[val], noisy.astype(np.float32))
    hist = agree.fit(x[train], y[train], xent(), seed=0, desc="t", eval_set=(x[test], y[test]))
    best = int(np.argmax(hist.select_auroc))
    assert hist.selected_epoch == best + 1 and 0.6 < hist.select_auroc[best] < 0.9
    np.testing.assert_array_equal(agree.predict(x[test]), hist.eval_probs[best])


def test_weak_val_refuses_one_class_weak_labels():
    cfg = load_config(None, ["train.epochs=2"])
    x, y = linear_data(100)
    learner = ProbeLearner(None, cfg)
    learner.select_set = (x[:20], np.full(20, 0.9, np.float32))
    with pytest.raises(W2SError, match="one class, so AUROC cannot rank epochs; raise train.select_size"):
        learner.fit(x[20:], y[20:], xent(), seed=0, desc="t", eval_set=(x[:20], y[:20]))


def test_hold_out_is_seeded_by_group_and_sized():
    from w2sgen.splits import hold_out
    from w2sgen.tasks import Example

    ex = [Example(f"e{i}", "t", i % 2, group=f"g{i // 2}") for i in range(100)]
    keep, held = hold_out(ex, 0.2, seed=0, what="train.select_size")
    assert len(held) == 20 and sorted(keep + held) == list(range(100)) and not set(keep) & set(held)
    assert {ex[i].group for i in keep}.isdisjoint({ex[i].group for i in held})  # groups stay whole
    assert hold_out(ex, 0.2, seed=0, what="x") == (keep, held)
    assert hold_out(ex, 0.2, seed=1, what="x")[1] != held
    assert len(hold_out(ex, 30, seed=0, what="x")[1]) == 30
    assert hold_out(list(reversed(ex)), 0.2, seed=0, what="x")[1] == sorted(99 - i for i in held)
    with pytest.raises(W2SError, match="train.select_size=99 holds out 99 of 100 training examples"):
        hold_out(ex, 99, seed=0, what="train.select_size")


@pytest.fixture(scope="module")
def toy_task(tmp_path_factory):
    path = tmp_path_factory.mktemp("toy") / "toy.csv"
    path.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(300)))
    return path


def test_pipeline_weak_val_records_the_epoch_and_reuses_weak_and_ceiling(tmp_path, tiny_bert_dir, toy_task,
                                                                         monkeypatch):
    from w2sgen import context, pipeline
    from w2sgen.store import Store

    trained = {}
    real_train = context.Context.train

    def spy(self, name, *args, **kwargs):
        trained[name] = real_train(self, name, *args, **kwargs)
        return trained[name]

    monkeypatch.setattr(context.Context, "train", spy)

    common = [f"task={toy_task}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
              "splits.weak_train=80", "splits.transfer=120", "splits.test=80", "train.epochs=6",
              "train.lr=0.01", "eval.bootstrap=50", "features.precision=fp32", "features.max_length=16",
              "device=cpu", f"store={tmp_path}"]
    last = pipeline.run(load_config(None, common), quiet=True)
    assert last["metrics"]["select"] == {"rule": "last", "epoch": 6}
    sel = pipeline.run(load_config(None, [*common, "train.select=weak_val", "train.select_size=0.25"]),
                       quiet=True)
    s = sel["metrics"]["select"]
    assert s["rule"] == "weak_val" and s["size"] == 30 and s["epochs"] == 6
    assert s["epoch"] == int(np.argmax(s["weak_val_auroc"])) + 1
    for step in ("weak_supervisor", "strong_ceiling"):  # not selected: the same cached models
        assert sel["timings"][step]["cached"]
    for k in ("weak", "ceiling"):
        assert sel["metrics"][f"{k}_accuracy"] == last["metrics"][f"{k}_accuracy"]
    assert Store(tmp_path).runs("done")[-1]["metrics"]["select"] == s
    # the student's test predictions are those after the kept epoch (its per-epoch record), and
    # it was selected on 30 transfer examples it did not train on
    student = trained["student"]
    np.testing.assert_array_equal(student["p_test"], student["eval_p"][s["epoch"] - 1])
    transfer = {e.id for e in sel_splits(sel)}
    assert len(set(student["select_ids"].tolist())) == 30 and set(student["select_ids"].tolist()) <= transfer


def test_the_kept_models_test_predictions_come_from_its_epoch_not_a_second_pass(tmp_path, tiny_bert_dir,
                                                                                   toy_task, monkeypatch):
    from w2sgen import context, pipeline

    trained, calls = {}, []
    real_train, real_predict = context.Context.train, ProbeLearner.predict

    def spy(self, name, *args, **kwargs):
        trained[name] = real_train(self, name, *args, **kwargs)
        return trained[name]

    def counting_predict(self, inputs):
        out = real_predict(self, inputs)
        calls.append((len(inputs), out))
        return out

    monkeypatch.setattr(context.Context, "train", spy)
    monkeypatch.setattr(ProbeLearner, "predict", counting_predict)
    pipeline.run(load_config(None, [
        f"task={toy_task}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
        "splits.weak_train=80", "splits.transfer=120", "splits.test=60", "train.epochs=3",
        "eval.bootstrap=50", "features.precision=fp32", "features.max_length=16", "device=cpu",
        f"store={tmp_path}"]), quiet=True)
    on_test = [out for n, out in calls if n == 60]
    assert len(on_test) == 3 * 3  # weak, ceiling, student: one test pass per epoch, none after
    for i, name in enumerate(("weak_supervisor", "strong_ceiling", "student")):
        arrays = trained[name]
        assert arrays["eval_p"].shape == (3, 60)
        # the last epoch's pass is the kept model's prediction, bit for bit
        np.testing.assert_array_equal(arrays["p_test"], on_test[3 * i + 2].astype(np.float32))
    assert [n for n, _ in calls if n != 60] == [120]  # the weak labels of transfer, nothing else


def sel_splits(result):
    from w2sgen.splits import make_splits
    from w2sgen.tasks import load_task, task_component

    cfg = result["config"]
    task = task_component(cfg.task)
    return make_splits(load_task(task), cfg.splits, task.name).transfer


def test_gt_early_stop_and_weak_val_are_kept_apart(tmp_path, tiny_bert_dir, toy_task):
    import dataclasses

    from w2sgen import pipeline
    from w2sgen.store import Store

    keys = [f"task={toy_task}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "method=gt_early_stop", f"store={tmp_path}", "device=cpu"]
    # the method's check(cfg) hook: refused when the config is built (w2s run, sweep, --dry-run)
    with pytest.raises(W2SError, match="gt_early_stop picks the student's epoch by test accuracy"):
        load_config(None, [*keys, "train.select=weak_val"])
    # and by the pipeline, for a config made in code
    cfg = load_config(None, keys)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, select="weak_val"))
    with pytest.raises(W2SError, match="gt_early_stop picks the student's epoch by test accuracy"):
        pipeline.run(cfg, quiet=True)
    assert Store(tmp_path).runs() == []
