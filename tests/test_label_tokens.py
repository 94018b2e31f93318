"""train.mode=label_tokens: a causal LM trained on the next-token logits of two label words, on
the tiny Llama built in memory (and, `slow`, on SmolLM2-135M on the CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import pipeline
from w2sgen.errors import W2SError
from w2sgen.label_tokens import LabelTokenLearner
from w2sgen.losses import LOSSES, xent
from w2sgen.models import MODELS, load, resolve
from w2sgen.train import MODES
from w2sgen.validate import load_config

TINY = ["train.mode=label_tokens", "train.label_words=[bad, good]", "train.instruction=''",
        "train.precision=fp32", "features.max_length=24", "train.batch_size=16"]


def config(path, *extra):
    """A label_tokens config on the model at `path` (the config's own model checks need a causal
    LM: the default encoders are refused)."""
    return load_config(None, [*TINY, f"weak_model={path}", f"strong_model={path}", *extra])


def learner(path, *extra):
    return LabelTokenLearner(resolve(str(path)), config(path, *extra))


def data_and_labels(n=96, seed=0):
    data = sentiment_examples(n, seed)
    return data, np.array([e.label for e in data], np.float32)


def lm_next_token(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0, -1]


def test_logits_are_the_lms_next_token_logits_of_the_label_ids(tiny_llama_dir):
    data, y = data_and_labels(40)
    lt = learner(tiny_llama_dir, "train.epochs=1", "train.lr=0.01")
    lt.fit(data[:32], y[:32], xent(), seed=0, desc="t")
    tok = lt.prompts.tok
    vocab = tok.get_vocab()
    assert lt.prompts.label_ids == [vocab["bad"], vocab["good"]]  # [negative, positive]
    rows = lt.prompts.encode(data[32:])
    assert len({len(r) for r in rows}) > 1  # ragged: right padding is exercised
    # the prompt is the template up to the label: text, newline token, 'Answer:' (unknown here)
    assert tok.convert_ids_to_tokens(rows[0][-2:]) == ["\n", "[UNK]"]
    with torch.no_grad():
        batched = lt.label_logits(rows)
    want = torch.stack([lm_next_token(lt.lm, r)[lt.prompts.label_ids] for r in rows])
    torch.testing.assert_close(batched, want, atol=1e-5, rtol=1e-5)
    p = lt.predict(data[32:])
    np.testing.assert_allclose(p, torch.softmax(want, -1)[:, 1].numpy(), atol=1e-6)


@pytest.mark.parametrize("adapter", ["none", "lora"])
def test_training_moves_label_probability_toward_soft_targets(tiny_llama_dir, adapter):
    """Soft targets 0.2 / 0.8 by class: the loss falls and the probability of the positive
    label token moves from the untrained LM's value toward the target (LoRA starts as the
    identity, so the untrained value is the plain LM's). Training every weight reaches the
    targets (the loss at the targets' entropy); LoRA on the random tiny model cannot, since its
    frozen random LM head bounds the logit gap, but halves the distance."""
    data, y = data_and_labels(64)
    targets = np.where(y > 0.5, 0.8, 0.2).astype(np.float32)
    model, _ = load(resolve(str(tiny_llama_dir)), lm_head=True)
    lt = learner(tiny_llama_dir, "train.epochs=10", "train.lr=0.01", "train.weight_decay=0",
                 f"train.adapter={adapter}")
    hist = lt.fit(data, targets, xent(), seed=0, desc="t")
    rows = lt.prompts.encode(data)
    before = np.array([torch.softmax(lm_next_token(model, r)[lt.prompts.label_ids], -1)[1].item()
                       for r in rows])
    after = lt.predict(data)
    assert hist.loss[-1] < hist.loss[0] - 0.1
    assert np.abs(after - targets).mean() < 0.5 * np.abs(before - targets).mean()
    if adapter == "none":
        entropy = -(0.8 * np.log(0.8) + 0.2 * np.log(0.2))
        assert hist.loss[-1] == pytest.approx(entropy, abs=0.01)
        assert after[y == 1].mean() == pytest.approx(0.8, abs=0.03)
        assert after[y == 0].mean() == pytest.approx(0.2, abs=0.03)
        assert np.abs(after - targets).max() < 0.1  # soft: not pushed to 0 or 1


def test_lora_by_default_and_every_weight_with_adapter_none(tiny_llama_dir):
    data, y = data_and_labels(32)
    lora = learner(tiny_llama_dir, "train.epochs=1")
    lora.fit(data, y, xent(), seed=0, desc="t")
    trainable = {n for n, p in lora.net.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert lora.lr == 1e-4
    full = learner(tiny_llama_dir, "train.epochs=1", "train.adapter=none")
    full.fit(data, y, xent(), seed=0, desc="t")
    assert all(p.requires_grad for p in full.net.parameters()) and full.lr == 2e-5
    some = learner(tiny_llama_dir, "train.epochs=1", "train.lora_targets=[q_proj, v_proj]")
    some.fit(data, y, xent(), seed=0, desc="t")
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in some.net.named_parameters()
               if p.requires_grad}
    assert adapted == {"q_proj", "v_proj"}


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_through_the_label_logits(tiny_llama_dir, loss):
    data, y = data_and_labels(48)
    soft = np.clip(y * 0.7 + 0.15, 0, 1).astype(np.float32)
    lt = learner(tiny_llama_dir, "train.epochs=4", "train.lr=0.01")
    hist = lt.fit(data, soft, LOSSES.get(loss)(), seed=0, desc=loss)
    assert np.isfinite(hist.loss).all()
    p = lt.predict(data)
    assert ((p > 0.5) == y).mean() > 0.6  # every loss learns the toy task through the tokens


def test_micro_batches_and_checkpointing_match_plain_training(tiny_llama_dir):
    data, y = data_and_labels(32)
    plain = learner(tiny_llama_dir, "train.epochs=2", "train.lr=0.01")
    plain.fit(data, y, xent(), seed=0, desc="t")
    other = learner(tiny_llama_dir, "train.epochs=2", "train.lr=0.01", "train.micro_batch_size=4",
                    "train.gradient_checkpointing=true")
    other.fit(data, y, xent(), seed=0, desc="t")
    np.testing.assert_allclose(other.predict(data), plain.predict(data), atol=1e-5)


def test_bad_input_is_one_line_before_training(tiny_llama_dir, tiny_bert_dir):
    data, _ = data_and_labels(40)
    ref = resolve(str(tiny_llama_dir))

    def preflight(*extra, model=ref):
        MODES.get("label_tokens").preflight(model, config(tiny_llama_dir, *extra), data)

    preflight()  # the good settings pass
    cases = [
        (["train.label_words=[bad, very good]"], r"'very good' is 2 tokens as ' very good'"),
        (["train.label_words=[bad, splendid]"], r"'splendid' is not in the vocabulary"),
        (["features.max_length=6"], r"prompts for .* are longer than features.max_length=6 "
                                    r"tokens \(longest \d+, example 's\d+'\); set features.max_length=\d+"),
        (["train.lora_targets=[q_projection]"], r"has no module named 'q_projection'; its linear "
                                                r"layers are .*q_proj.*; set train.lora_targets"),
        (["train.lora_targets=[mlp]"], r"modules named 'mlp' are LlamaMLP, not linear layers"),
    ]
    for extra, message in cases:
        with pytest.raises(W2SError, match=message) as err:
            preflight(*extra)
        assert "\n" not in str(err.value)
    with pytest.raises(W2SError, match="is an encoder"):
        preflight(model=resolve(str(tiny_bert_dir)))
    # the same LoRA check guards mode=lora
    with pytest.raises(W2SError, match="no module named 'nope'"):
        MODES.get("lora").preflight(ref, load_config(None, ["train.lora_targets=[nope]"]), data)


def test_config_refuses_bad_prompt_options():
    for key, value in [("train.label_words", "[good]"), ("train.template", "'{text} then'"),
                       ("train.adapter", "qlora"), ("train.lora_targets", "[]")]:
        with pytest.raises(W2SError, match=f"config: {key} must be"):
            load_config(None, [f"{key}={value}"])


def test_prompt_defaults_come_from_the_task():
    from w2sgen.label_tokens import label_prompt_format
    from w2sgen.prompting import DEFAULT_TEMPLATE
    from w2sgen.tasks import TASKS

    cfg = load_config(None, ["train.mode=label_tokens", "weak_model=nobody/causal",
                             "strong_model=nobody/causal"])  # hub ids: no model check
    instruction, words = TASKS.get(cfg.task.name).prompt
    fmt = label_prompt_format(cfg)
    assert (fmt.instruction, fmt.words, fmt.template) == (instruction, tuple(words), DEFAULT_TEMPLATE)
    fmt = label_prompt_format(load_config(None, ["train.mode=label_tokens", "train.label_words=[A, B]",
                                                 "weak_model=nobody/causal", "strong_model=nobody/causal",
                                                 "train.template=\"Q: {text}\\nLabel:{label}\""]))
    assert fmt.words == ("A", "B") and fmt.query("x") == "Q: x\nLabel:"


def test_pipeline_runs_label_tokens_for_weak_ceiling_and_student(tmp_path, tiny_llama_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(200)))
    common = [*TINY, f"task={data}", f"weak_model={tiny_llama_dir}", f"strong_model={tiny_llama_dir}",
              "splits.weak_train=60", "splits.transfer=60", "splits.test=60", "train.epochs=6",
              "train.lr=0.01", "eval.bootstrap=50", "device=cpu", f"store={tmp_path / 'store'}"]
    out = pipeline.run(load_config(None, common), quiet=True)
    m = out["metrics"]
    for k in ("weak", "ceiling", "student"):
        assert m[f"{k}_accuracy"]["value"] > 0.7, (k, m[f"{k}_accuracy"])
    # bad input fails before the run is recorded
    from w2sgen.store import Store

    runs = len(Store(tmp_path / "store").runs())
    with pytest.raises(W2SError, match="longer than features.max_length=5"):
        pipeline.run(load_config(None, [*common, "features.max_length=5"]), quiet=True)
    assert len(Store(tmp_path / "store").runs()) == runs


@pytest.mark.slow
@pytest.mark.skipif(not MODELS.get("smollm2-135m").installed(), reason="needs `w2s pull smollm2-135m`")
def test_smollm2_learns_sentiment_through_its_label_tokens():
    """SmolLM2-135M on the CPU with LoRA: ' negative' / ' positive' are single tokens after
    'Answer:', and a few steps on clear sentences lift the label-token accuracy on held-out ones."""
    pos = ["I loved this film, it was wonderful.", "A delightful, moving story.", "Great acting and a great script.",
           "The best meal I have had in years.", "Friendly staff and a lovely room.", "Absolutely brilliant.",
           "I would happily watch it again.", "A charming and funny movie."]
    neg = ["I hated this film, it was awful.", "A boring, lifeless story.", "Terrible acting and a dull script.",
           "The worst meal I have had in years.", "Rude staff and a dirty room.", "Absolutely dreadful.",
           "I would never watch it again.", "A tedious and unfunny movie."]
    from w2sgen.tasks import Example

    data = [Example(f"p{i}", t, 1) for i, t in enumerate(pos)] + \
        [Example(f"n{i}", t, 0) for i, t in enumerate(neg)]
    y = np.array([e.label for e in data], np.float32)
    train = [i for i in range(16) if i % 4 != 3]
    test = [i for i in range(16) if i % 4 == 3]
    cfg = load_config(None, ["weak_model=smollm2-135m", "strong_model=smollm2-135m",  # causal models
                             "train.mode=label_tokens", "train.label_words=[negative, positive]",
                             "train.instruction='Is the sentiment of the text positive or negative?'",
                             "train.precision=fp32", "train.epochs=3", "train.batch_size=4",
                             "train.lr=0.0005", "features.max_length=64"])
    ref = resolve("smollm2-135m")
    LabelTokenLearner.preflight(ref, cfg, data)
    lt = LabelTokenLearner(ref, cfg)
    hist = lt.fit([data[i] for i in train], y[train], xent(), seed=0, desc="smollm2")
    tok = lt.prompts.tok
    assert tok.convert_ids_to_tokens(lt.prompts.label_ids) == ["Ġnegative", "Ġpositive"]
    assert hist.loss[-1] < hist.loss[0]
    p = lt.predict([data[i] for i in test])
    assert ((p > 0.5) == y[test]).mean() >= 0.75


# ------------------------------------------------ weak_train: a probe supervises a label_tokens LM


def probe_supervised(tmp_path, bert, llama, *extra):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(200)))
    return [*TINY, f"task={data}", f"weak_model={bert}", f"strong_model={llama}",
            "weak_train.mode=probe", "weak_train.epochs=20", "weak_train.lr=0.01",
            "splits.weak_train=60", "splits.transfer=60", "splits.test=60", "train.epochs=6",
            "train.lr=0.01", "eval.bootstrap=50", "device=cpu", f"store={tmp_path / 'store'}", *extra]


def test_config_checks_each_model_under_its_own_mode(tmp_path, tiny_bert_dir, tiny_llama_dir):
    keys = probe_supervised(tmp_path, tiny_bert_dir, tiny_llama_dir)
    cfg = load_config(None, keys)  # the encoder is the probe's: label_tokens checks the LM only
    assert (cfg.for_weak().train.mode, cfg.train.mode) == ("probe", "label_tokens")
    without = [k for k in keys if not k.startswith("weak_train.")]
    with pytest.raises(W2SError, match=r"is an encoder; .*weak_train.mode=probe") as err:
        load_config(None, without)
    assert "\n" not in str(err.value)
    with pytest.raises(W2SError, match=r"weak supervisor '.*' \(weak_train over train\): .*is an encoder"):
        load_config(None, [*keys, "weak_train.mode=label_tokens"])
    with pytest.raises(W2SError, match=r"weak supervisor .*'splendid' is not in the vocabulary"):
        load_config(None, [*keys, f"weak_model={tiny_llama_dir}", "weak_train.mode=label_tokens",
                           "weak_train.label_words=[bad, splendid]"])
    # the strong model keeps train's checks: a bad word of train's is still refused
    with pytest.raises(W2SError, match="'splendid' is not in the vocabulary") as err:
        load_config(None, [*keys, "train.label_words=[bad, splendid]"])
    assert "weak supervisor" not in str(err.value)


def test_the_strong_models_preflight_reads_only_the_splits_it_sees(tmp_path, tiny_bert_dir,
                                                                  tiny_llama_dir):
    """A label_tokens ceiling and student train on transfer and predict test: a prompt too long
    for features.max_length in weak_train (the probe's split) is not a reason to refuse, one in
    transfer is; a label_tokens weak supervisor sees weak_train and refuses it."""
    from w2sgen.splits import make_splits
    from w2sgen.store import Store
    from w2sgen.tasks import load_task, task_component

    rows = [(f"r{i}", e.text, e.label) for i, e in enumerate(sentiment_examples(200))]
    data = tmp_path / "ids.csv"

    def write(long_id=None):
        data.write_text("id,text,label\n" + "".join(
            f"{i},{' '.join([t] * 30) if i == long_id else t},{y}\n" for i, t, y in rows))

    write()
    keys = probe_supervised(tmp_path, tiny_bert_dir, tiny_llama_dir, f"task={data}",
                            "features.max_length=40", "train.epochs=1", "weak_train.epochs=2")
    cfg = load_config(None, keys)
    splits = make_splits(load_task(task_component(cfg.task)), cfg.splits, "toy")
    write(splits.weak_train[0].id)  # ids are the column's: the splits do not move
    out = pipeline.run(load_config(None, keys), quiet=True)
    assert out["metrics"]["student_accuracy"]["value"] > 0
    done = len(Store(tmp_path / "store").runs())
    with pytest.raises(W2SError, match=r"weak supervisor .*longer than features.max_length=40"):
        pipeline.run(load_config(None, [*keys, f"weak_model={tiny_llama_dir}",
                                        "weak_train.mode=label_tokens"]), quiet=True)
    same = [*(k for k in keys if not k.startswith("weak_train.")), f"weak_model={tiny_llama_dir}"]
    with pytest.raises(W2SError, match=r"1 of 180 prompts"):  # one LM, one `train`: weak_train too
        pipeline.run(load_config(None, same), quiet=True)
    write(splits.transfer[0].id)
    with pytest.raises(W2SError, match=r"1 of 120 prompts .* longer than features.max_length=40"):
        pipeline.run(load_config(None, keys), quiet=True)
    assert len(Store(tmp_path / "store").runs()) == done  # refused before anything was recorded


def test_pipeline_probe_supervisor_and_label_token_student(tmp_path, tiny_bert_dir, tiny_llama_dir,
                                                           monkeypatch, capsys):
    from w2sgen import cli
    from w2sgen.store import Store

    keys = probe_supervised(tmp_path, tiny_bert_dir, tiny_llama_dir)
    store = Store(tmp_path / "store")
    seen: dict[str, dict] = {}
    cached = store.cached

    def spy(kind, key, compute):
        if kind == "train":
            seen[key["mode"] + ":" + key["model"]] = key
        return cached(kind, key, compute)

    monkeypatch.setattr(store, "cached", spy)
    cfg = load_config(None, keys)
    out = pipeline.run(cfg, store, quiet=True)
    m = out["metrics"]
    bert, llama = resolve(str(tiny_bert_dir)).identity, resolve(str(tiny_llama_dir)).identity
    assert set(seen) == {f"probe:{bert}", f"label_tokens:{llama}"}  # weak; ceiling and student
    weak_key = seen[f"probe:{bert}"]
    assert weak_key["train"]["epochs"] == 20 and "prompt" not in weak_key
    assert any(k.startswith("features ") for k in out["timings"])  # the probe read features
    assert len(m["curves"]["weak"]["loss"]) == 20 and len(m["curves"]["student"]["loss"]) == 6
    for k in ("weak", "ceiling", "student"):
        assert m[f"{k}_accuracy"]["value"] > 0.7, (k, m[f"{k}_accuracy"])
    assert m["precision"] == {"features": "fp32", "train": "fp32", "weak_train": "fp32"}
    run = store.runs("done")[-1]
    assert run["config_hash"] == cfg.hash()
    assert run["config"]["weak_train"]["mode"] == "probe" and run["config"]["train"]["mode"] == "label_tokens"
    # the ceiling is the same step as in the same run without weak_train (an LM weak model)
    plain = [k for k in keys if not k.startswith("weak_train.")] + [f"weak_model={tiny_llama_dir}"]
    again = pipeline.run(load_config(None, plain), store, quiet=True)
    assert again["timings"]["strong_ceiling"]["cached"]
    assert not again["timings"]["weak_supervisor"]["cached"]

    def stop(*args, **kwargs):
        raise W2SError("stopped after the header")

    monkeypatch.setattr(pipeline, "run", stop)
    capsys.readouterr()
    cli.main(["run", *keys])
    head = capsys.readouterr().out
    assert "mode label_tokens (weak supervisor probe), loss xent" in head


def test_memory_estimates_use_each_roles_settings(tiny_llama_dir, monkeypatch):
    from w2sgen import hardware, memory

    ref = resolve(str(tiny_llama_dir))
    cfg = config(tiny_llama_dir, "train.batch_size=16", "weak_train.mode=full",
                 "weak_train.batch_size=64", "features.max_length=64")
    weak, strong = memory.check_fits(ref, cfg.for_weak(), "cpu"), memory.check_fits(ref, cfg, "cpu")
    assert weak is not None and weak.setting.startswith("full, fp32, batch 64 x 64 tokens")
    assert strong is not None and strong.setting.startswith("label_tokens (LoRA), fp32, batch 16 x 64 tokens")
    assert memory.check_fits(ref, config(tiny_llama_dir, "weak_train.mode=probe").for_weak(), "cpu") is None
    # on a GPU too small for the weak supervisor's batch, the advice names weak_train's keys
    settings = memory.settings_of(cfg.for_weak(), "cpu")
    arch = memory.arch_of(ref)
    need16 = memory.estimate(arch, **{**settings, "micro_batch_size": 16}).total
    need32 = memory.estimate(arch, **{**settings, "micro_batch_size": 32}).total
    gpu = hardware.Probe("cuda", "Fake GPU", "sm_90", 1, True, 1.0, 2.0,
                         int((need16 + need32) / 2 / memory.HEADROOM))
    monkeypatch.setattr(hardware, "probe", lambda device="cpu", refresh=False: gpu)
    monkeypatch.setattr(hardware, "gpu_figures", lambda: (gpu, "GPU Fake GPU: test figures"))
    with pytest.raises(W2SError) as err:
        memory.check_fits(ref, cfg.for_weak(), "cuda", "weak_train")
    msg = str(err.value)
    assert "(the weak supervisor)" in msg and msg.endswith("set weak_train.micro_batch_size=16"), msg


def test_weak_ensemble_members_train_as_the_weak_supervisor(tmp_path, tiny_bert_dir, tiny_llama_dir):
    """weak_ensemble's members are weak supervisors: under weak_train, so the base member is the
    pipeline's own supervisor from the cache (a label_tokens member would refuse the encoder)."""
    keys = probe_supervised(tmp_path, tiny_bert_dir, tiny_llama_dir, "method=weak_ensemble",
                            "method.seeds=2", "train.epochs=2")
    out = pipeline.run(load_config(None, keys), quiet=True)
    t = out["timings"]
    name = resolve(str(tiny_bert_dir)).name
    assert t[f"weak {name} seed 0"]["cached"] and not t[f"weak {name} seed 1"]["cached"]
    assert [m["seed"] for m in out["metrics"]["method"]["members"]] == [0, 1]


def test_a_suite_refuses_a_cell_whose_prompts_are_too_long_before_anything_runs(
        tmp_path, tiny_bert_dir, tiny_llama_dir, capsys):
    """The label_tokens length check on each cell's data, as the suite loads (sweep/checks.py):
    a task whose transfer split holds a prompt over features.max_length stops the suite, and
    `--dry-run` says so, instead of the cell failing when its turn comes; the same long text
    in weak_train, which only the probe supervisor reads, passes."""
    import yaml

    from w2sgen import cli, sweep
    from w2sgen.config import set_key
    from w2sgen.splits import make_splits
    from w2sgen.tasks import load_task, task_component

    keys = probe_supervised(tmp_path, tiny_bert_dir, tiny_llama_dir, "features.max_length=40",
                            "splits.seed=0")
    base: dict = {}
    for k in keys:
        key, _, value = k.partition("=")
        set_key(base, key, yaml.safe_load(value))
    rows = [(f"r{i}", e.text, e.label) for i, e in enumerate(sentiment_examples(200))]

    def task_with_long(name, long_id=None) -> str:  # the toy task (ids fix the splits), one text long
        path = tmp_path / f"{name}.csv"
        path.write_text("id,text,label\n" + "".join(
            f"{i},{' '.join([t] * 30) if i == long_id else t},{y}\n" for i, t, y in rows))
        return str(path)

    base["task"] = task_with_long("toy")
    cfg = load_config(None, [*keys, f"task={base['task']}"])
    splits = make_splits(load_task(task_component(cfg.task)), cfg.splits, "toy")

    grid = {"task": [{"label": "toy", "task": base["task"]},
                     {"label": "long-in-weak-train", "task": task_with_long("a", splits.weak_train[0].id)},
                     {"label": "long-in-transfer", "task": task_with_long("b", splits.transfer[0].id)}],
            "seeds": [0, 1]}
    suite = tmp_path / "suite.yaml"
    suite.write_text(yaml.safe_dump({"name": "long", "base": base, "grid": grid}))
    store = tmp_path / "suite-store"
    with pytest.raises(W2SError, match=r"2 invalid cell\(s\), nothing was run: train.mode=label_tokens: "
                       r"1 of 120 prompts .* longer than features.max_length=40 .*\(cell "
                       r"'long-in-transfer \| seed 0' and 1 more\)") as err:
        sweep.load_suite(suite, str(store))
    assert "\n" not in str(err.value)
    assert cli.main(["sweep", str(suite), "--store", str(store), "--dry-run"]) == 2
    assert "1 of 120 prompts" in capsys.readouterr().err
    assert not (store / "runs.sqlite").exists()
    grid["task"].pop()  # the weak_train-only long text: the probe reads it, the LM does not
    suite.write_text(yaml.safe_dump({"name": "long", "base": base, "grid": grid}))
    assert len(sweep.load_suite(suite, str(store)).cells) == 4
