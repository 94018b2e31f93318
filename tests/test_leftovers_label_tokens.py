"""Issue 13 leftovers: train.mode=label_tokens' refusals when a config is built (so `w2s run` and
`w2s sweep --dry-run` stop before any training), one prompt-block implementation for
label_tokens and ICL, LocalLM reading its tokenizer once, a report reading each run's
predictions once."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import sentiment_examples

from w2sgen import cli, label_tokens, last_k, models, train, validate
from w2sgen.errors import W2SError
from w2sgen.validate import load_config

TINY = ["train.mode=label_tokens", "train.label_words=[bad, good]", "train.instruction=''",
        "train.precision=fp32", "features.max_length=24"]


def tiny(path, *extra):
    return [*TINY, f"weak_model={path}", f"strong_model={path}", *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if anything trains or loads weights."""
    def refuse(*a, **k):
        raise AssertionError("weights were loaded or a model trained")

    monkeypatch.setattr(models, "load", refuse)
    for mode_module in (train, label_tokens, last_k):  # each trains through the loop it imports
        monkeypatch.setattr(mode_module, "training_loop", refuse)
    monkeypatch.setattr(validate, "_MODEL_CHECKS", {})


def test_sweep_dry_run_refuses_a_two_token_label_word_in_one_line(tiny_llama_dir, tmp_path, capsys,
                                                                   no_training):
    suite = tmp_path / "s.yaml"
    suite.write_text(f"name: s\nbase:\n  train: {{mode: label_tokens, label_words: [bad, very good], "
                     f"instruction: ''}}\n  weak_model: {tiny_llama_dir}\n  strong_model: {tiny_llama_dir}\n"
                     "grid:\n  seeds: [0, 1]\n")
    assert cli.main(["sweep", str(suite), "--store", str(tmp_path / "store"), "--dry-run"]) != 0
    err = capsys.readouterr().err.strip()
    assert "'very good' is 2 tokens as ' very good'" in err and "nothing was run" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "store" / "runs.sqlite").exists() or not any(
        (tmp_path / "store" / "artifacts").glob("*"))


def test_run_refuses_bad_label_tokens_settings_before_any_data_or_training(tiny_llama_dir, tmp_path,
                                                                           capsys, no_training):
    cases = [
        (["train.label_words=[bad, very good]"], "'very good' is 2 tokens as ' very good'"),
        (["train.label_words=[bad, splendid]"], "'splendid' is not in the vocabulary"),
        (["features.max_length=2"], "the prompt for .* is \\d+ tokens before any text"),
        (["train.lora_targets=[q_projection]"], "has no module named 'q_projection'"),
    ]
    for extra, message in cases:
        with pytest.raises(W2SError, match=message) as err:
            load_config(None, tiny(tiny_llama_dir, *extra))
        assert "\n" not in str(err.value)
        rc = cli.main(["run", *tiny(tiny_llama_dir, *extra), "--store", str(tmp_path / "store")])
        out = capsys.readouterr()
        assert rc != 0 and len(out.err.strip().splitlines()) == 1, out.err
        assert "w2s run:" not in out.out  # refused when the config was read
    with pytest.raises(W2SError, match="is an encoder"):  # the default strong model
        load_config(None, [*TINY, f"weak_model={tiny_llama_dir}"])
    load_config(None, tiny(tiny_llama_dir))  # the good settings pass
    # hub ids and models that are not installed are checked when the run starts, not here
    load_config(None, [*TINY, "weak_model=nobody/a", "strong_model=nobody/b"])


def test_config_checks_read_each_tokenizer_once_per_setting(tiny_llama_dir, monkeypatch):
    monkeypatch.setattr(validate, "_MODEL_CHECKS", {})
    calls = []
    real = models.load_tokenizer
    monkeypatch.setattr(models, "load_tokenizer", lambda ref: calls.append(ref.name) or real(ref))
    for seed in range(3):
        load_config(None, tiny(tiny_llama_dir, f"seed={seed}"))
    assert len(calls) == 1  # weak and strong are one model, and the seed changes no check
    for _ in range(2):
        with pytest.raises(W2SError, match="very good"):
            load_config(None, tiny(tiny_llama_dir, "train.label_words=[bad, very good]"))
    assert len(calls) == 2


def test_label_tokens_and_icl_build_the_same_zero_shot_prompt(tiny_llama_dir):
    from w2sgen.lm import LocalLM
    from w2sgen.methods.icl_refine import Refiner
    from w2sgen.prompting import PromptFormat, example_text
    from w2sgen.tasks import Example

    examples = sentiment_examples(6) + [Example("p", "good movie", 1, text_pair="the food was bad")]
    for instruction in ("", "is it good"):
        fmt = PromptFormat(instruction, ("bad", "good"), "Input: {text}\nAnswer:{label}\n\n")
        lm = LocalLM(str(tiny_llama_dir))
        refiner = Refiner(lm, fmt)
        icl = [refiner.join([refiner.start, q]) for q in refiner.queries([example_text(e) for e in examples])]
        prompts = label_tokens.LabelPrompts(lm.tokenizer, fmt, "tiny", max_length=64)
        assert prompts.encode(examples) == icl
        assert prompts.label_ids == list(lm.label_ids(fmt.words, fmt.tail))
        assert lm._model is None  # no weights were needed


def test_local_lm_reads_its_tokenizer_once(tiny_llama_dir, monkeypatch):
    from w2sgen import loading
    from w2sgen.lm import LocalLM

    calls = []
    real = models.load_tokenizer
    for where in (models, loading):  # read through the models' names, and by load() itself
        monkeypatch.setattr(where, "load_tokenizer", lambda ref: calls.append(ref.name) or real(ref))
    lm = LocalLM(str(tiny_llama_dir))
    lm.check_words(("bad", "good"), "Answer:")  # the checks read the tokenizer
    tok = lm.tokenizer
    out = lm.label_logodds(lm.start, lm.blocks(["good movie\nAnswer:"]), ("bad", "good"),
                           context="Answer:")  # the weights load
    assert np.isfinite(out).all() and lm.tokenizer is tok and len(calls) == 1
    fresh = LocalLM(str(tiny_llama_dir))  # weights first: the tokenizer comes with them
    fresh.loaded()
    assert len(calls) == 2 and fresh.tokenizer is not None and len(calls) == 2


def test_a_report_reads_each_runs_predictions_once(tmp_path, monkeypatch):
    from test_report import N_TEST, TASKS, add_run, synthetic_predictions

    from w2sgen.report import document
    from w2sgen.report.runs import latest_done
    from w2sgen.store import Store

    store = Store(tmp_path / "store")
    for t, task in enumerate(TASKS[:2]):
        for seed in (0, 1):
            y, weak, naive, ceiling = synthetic_predictions(t, seed)
            add_run(store, task, seed, {}, y, weak, naive, ceiling)
            add_run(store, task, seed, {"loss": "logconf"}, y, weak, naive[::-1].copy(), ceiling)
    reads = []
    real = Store.load_arrays
    monkeypatch.setattr(Store, "load_arrays", lambda self, run_id, name, need=():
                        reads.append((run_id, name)) or real(self, run_id, name, need))
    runs = latest_done(store)
    document.write_report(store, runs, tmp_path / "report", rounds=50)
    preds = [r for r in reads if r[1] == "predictions.npz"]
    assert sorted(preds) == sorted((r["id"], "predictions.npz") for r in runs)
    assert N_TEST == 200
    # a file that changes is read again (same store object)
    run_id = runs[0]["id"]
    y, weak, naive, ceiling = synthetic_predictions(0, 0)
    store.save_arrays(run_id, "predictions.npz", {"ids": np.array([f"x{i}" for i in range(N_TEST)]),
                                                  "labels": y, "weak": weak, "student": naive,
                                                  "ceiling": ceiling})
    import os

    os.utime(store.root / "artifacts" / str(run_id) / "predictions.npz", ns=(1, 1))
    from w2sgen.report.runs import run_predictions

    assert run_predictions(store, run_id)["ids"][0] == "x0"
