"""`generative_pretrain` on the tiny in-memory models: the LM loss falls, the adapted backbone is
saved whole, reloads and differs from the base, is reused, and never sees test text."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import pipeline
from w2sgen.methods import METHODS
from w2sgen.methods.generative import adapt, collect_texts, select_texts
from w2sgen.models import load, resolve
from w2sgen.splits import Splits
from w2sgen.tasks import Example
from w2sgen.validate import load_config

TOY = ["the movie was very good", "the food was very bad", "the hotel room was nice",
       "the service was terrible", "this movie is great", "this food is awful"] * 8


def weights(ref) -> dict[str, torch.Tensor]:
    model, _ = load(ref)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("fixture,kind,objective", [("tiny_bert_dir", "encoder", "mlm"),
                                                     ("tiny_llama_dir", "causal", "clm")])
def test_adaptation_lowers_the_lm_loss_saves_a_reloadable_backbone_and_is_reused(
        fixture, kind, objective, request, tmp_path):
    base = resolve(str(request.getfixturevalue(fixture)))
    assert base.kind == kind
    adapted, report = adapt(base, TOY, tmp_path, epochs=4, lr=1e-2, batch_size=16, max_length=16)
    assert report["objective"] == objective and report["texts"] == len(TOY)
    assert not report["cached"] and len(report["lm_loss"]) == 4
    assert report["lm_loss_last_epoch"] < 0.8 * report["lm_loss_first_epoch"], report["lm_loss"]

    folder = tmp_path / "cache" / "models" / adapted.path.rsplit("/", 1)[-1]
    assert adapted.path == report["adapted_model"] == str(folder) and folder.is_dir()
    assert adapted.kind == kind and adapted.identity.startswith("adapted:")
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".tmp")]  # no leftovers

    reloaded = resolve(str(folder))
    assert reloaded.kind == kind and reloaded.pooling == base.pooling
    new, old = weights(reloaded), weights(base)
    shared = [k for k in old if k in new and new[k].shape == old[k].shape]
    assert len(shared) >= len(old) - 1  # the whole backbone (the MLM path may grow the vocab)
    changed = [k for k in shared if not torch.equal(new[k], old[k])]
    assert len(changed) > len(shared) // 2
    model, tok = load(reloaded)
    out = model(**tok(["the movie was good"], return_tensors="pt"))
    assert torch.isfinite(out.last_hidden_state).all()

    again, report2 = adapt(base, TOY, tmp_path, epochs=4, lr=1e-2, batch_size=16, max_length=16)
    assert report2["cached"] and again == adapted and report2["adapted_model"] == str(folder)
    assert report2["lm_loss"] == report["lm_loss"]  # read back, not retrained
    other, report3 = adapt(base, TOY, tmp_path, epochs=1, lr=1e-2, batch_size=16, max_length=16)
    assert not report3["cached"] and other.path != adapted.path


def test_adaptation_does_not_depend_on_the_callers_random_state(tiny_bert_dir, tmp_path):
    """The MLM head the packaged encoders lack starts random: that start must come from the
    method's own seed, not from whatever ran before in the process (a sweep's earlier cells),
    which the cache key cannot see."""
    base = resolve(str(tiny_bert_dir))
    runs = []
    for i, caller_seed in enumerate((1, 2)):
        torch.manual_seed(caller_seed)
        torch.rand(caller_seed * 7)  # some other work drew from the global generator
        adapted, report = adapt(base, TOY, tmp_path / f"store{i}", epochs=2, lr=1e-2,
                                batch_size=16, max_length=16)
        assert report["lm_head_random"] and not report["cached"]
        runs.append((weights(resolve(adapted.path)), report["lm_loss"]))
        after = torch.rand(3)
        torch.manual_seed(caller_seed)
        torch.rand(caller_seed * 7)
        assert torch.equal(after, torch.rand(3))  # the caller's stream is where it was
    (w0, loss0), (w1, loss1) = runs
    assert loss0 == loss1
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)


def test_only_weak_train_and_transfer_text_is_collected():
    def ex(split, i, pair=None):
        return Example(f"{split}{i}", f"{split} text {i}", i % 2, text_pair=pair)

    splits = Splits(weak_train=[ex("w", 0), ex("w", 1, "w pair")],
                    transfer=[ex("t", 0), ex("t", 1)], test=[ex("HELDOUT", 0), ex("HELDOUT", 1, "HELDOUT pair")])
    texts = collect_texts(splits)
    assert texts == ["w text 0", "w text 1\nw pair", "t text 0", "t text 1"]
    assert not any("HELDOUT" in t for t in texts)
    chosen = select_texts(texts, 2)
    assert len(chosen) == 2 and set(chosen) <= set(texts)
    assert chosen == select_texts(texts, 2)  # seed 0, whatever the run's seed
    assert sorted(select_texts(texts, None)) == sorted(texts)


def test_options_are_checked(tiny_bert_dir, tmp_path):
    from w2sgen.errors import W2SError

    assert "generative_pretrain" in METHODS
    from w2sgen.validate import load_config

    for bad, match in (("epochs=0", "method.epochs must be an integer >= 1"),
                       ("lr=-1.0", "method.lr must be a number > 0"),
                       ("batch_size=0", "method.batch_size must be an integer >= 1"),
                       ("max_length=1", "method.max_length must be")):
        with pytest.raises(W2SError, match=match):  # when the config is built, before any work
            load_config(None, ["method=generative_pretrain", f"method.{bad}"])


def test_pipeline_runs_generative_pretrain_and_shares_the_adapted_model_across_seeds(
        tmp_path, tiny_bert_dir, tiny_llama_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(200)))
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_llama_dir}",
              "splits.weak_train=60", "splits.transfer=60", "splits.test=60", "train.epochs=1",
              "eval.bootstrap=50", "features.precision=fp32", "features.max_length=32",
              "device=cpu", f"store={tmp_path / 'store'}", "method.name=generative_pretrain",
              "method.epochs=1", "method.max_examples=100"]
    out = pipeline.run(load_config(None, common), quiet=True)
    m = out["metrics"]["method"]
    assert m["name"] == "generative_pretrain" and m["texts"] == 100 and not m["cached"]
    assert np.isfinite(out["metrics"]["student_auc"]["value"])
    step = [k for k in out["timings"] if k.startswith("generative_pretrain")]
    assert step and not out["timings"][step[0]]["cached"]

    m2 = pipeline.run(load_config(None, [*common, "seed=1"]), quiet=True)["metrics"]["method"]
    assert m2["cached"] and m2["adapted_model"] == m["adapted_model"]


def test_preferred_texts_are_weak_trains_preferred_responses_and_a_pairwise_run_adapts_on_them(
        tmp_path, tiny_bert_dir, tiny_llama_dir):
    import random

    import w2sgen
    from w2sgen.errors import W2SError
    from w2sgen.methods.generative import preferred_texts
    from w2sgen.tasks import Comparison, comparison_examples

    good, bad = "good great nice happy love".split(), "bad awful sad poor terrible".split()
    rng = random.Random(0)
    cs = [Comparison(f"row {i}", "the movie was", " ".join(rng.choices(good, k=3)),
                     " ".join(rng.choices(bad, k=3)), f"g{i}") for i in range(100)]
    ex = comparison_examples("syn", cs, random.Random(1))
    splits = Splits(ex[:30], ex[30:60], ex[60:])
    texts = preferred_texts(splits)
    assert len(texts) == 30 and all(t.startswith("the movie was\n") for t in texts)
    assert all(w in good for t in texts for w in t.split("\n")[1].split())  # never the other one
    with pytest.raises(W2SError, match="method.texts=preferred .* has no comparisons"):
        preferred_texts(Splits(*(sentiment_examples(30)[i::3] for i in range(3))))

    res = w2sgen.run(examples=ex, weak_model=str(tiny_bert_dir), strong_model=str(tiny_llama_dir),
                     store=str(tmp_path), quiet=True, device="cpu",
                     splits={"weak_train": 30, "transfer": 30, "test": 30},
                     features={"max_length": 32, "precision": "fp32"}, train={"epochs": 1},
                     method={"name": "generative_pretrain", "texts": "preferred", "epochs": 1})
    m = res.metrics["method"]
    assert m["texts"] == 30 and m["objective"] == "clm" and np.isfinite(res.student.value)
