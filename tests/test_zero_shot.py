"""Zero-shot accuracy of a causal LM (eval.zero_shot, zero_shot.py): continuation log-probabilities
against a plain forward pass, candidates competing within their question, the likelier response of
a comparison, and the run's metrics row."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from w2sgen.errors import W2SError
from w2sgen.example import Example
from w2sgen.lm import LocalLM
from w2sgen.tasks import Comparison, comparison_examples
from w2sgen.zero_shot import kind, probabilities


@pytest.fixture(scope="module")
def lm(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir).eval()
    return LocalLM.from_loaded(model, AutoTokenizer.from_pretrained(tiny_llama_dir), batch_size=2)


def direct(lm, prompt, cont):
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        logp = torch.log_softmax(lm.model(ids).logits[0].float(), -1)
    return sum(logp[t - 1, ids[0, t]].item() for t in range(len(prompt), len(prompt) + len(cont)))


def test_continuation_logprob_equals_a_forward_pass_per_row(lm):
    texts = [("the movie was\n", "good"), ("the food was very\n", "not good and very bad"),
             ("it\n", "sad"), ("the hotel room was\n", "great and the service nice")]
    prompts = [lm.join([lm.start, b]) for b in lm.blocks([q for q, _ in texts])]
    conts = lm.blocks([c for _, c in texts])
    got = lm.continuation_logprob(prompts, conts)  # batches of 2, padded to different widths
    want = [direct(lm, p, c) for p, c in zip(prompts, conts)]
    assert got.tolist() == pytest.approx(want, abs=1e-4)
    assert all(w < 0 for w in want)


def candidates():
    out = []
    for q in ("the movie was", "the food was"):
        for i, move in enumerate(("good", "very bad and sad", "fine")):
            out.append(Example(f"{q}/{i}", q, int(i == 0), q, move))
    return out


def test_candidates_compete_within_their_question(lm):
    ex = candidates()
    assert kind(ex, "t") == "candidates"
    p = probabilities(lm, ex, "candidates")
    prompts = [lm.join([lm.start, b]) for b in lm.blocks([f"{e.text}\n" for e in ex])]
    logp = lm.continuation_logprob(prompts, lm.blocks([e.text_pair for e in ex]))
    for g in (slice(0, 3), slice(3, 6)):
        assert p[g].sum() == pytest.approx(1.0)
        assert np.argmax(p[g]) == np.argmax(logp[g])
        assert p[g].tolist() == pytest.approx((np.exp(logp[g]) / np.exp(logp[g]).sum()).tolist(), rel=1e-6)


def comparisons(n):
    good, bad = "good great nice happy love".split(), "bad awful sad poor terrible".split()
    rng = random.Random(0)
    cs = [Comparison(f"row {i}", "the movie was", " ".join(rng.choices(good, k=1 + i % 3)),
                     " ".join(rng.choices(bad, k=2)), f"g{i}") for i in range(n)]
    return comparison_examples("syn", cs, random.Random(1))


def test_a_comparison_prefers_the_response_likelier_per_token(lm):
    ex = comparisons(6)
    assert kind(ex, "t") == "comparison"
    p = probabilities(lm, ex, "comparison")
    for e, pa in zip(ex, p):
        prompt = lm.join([lm.start, lm.blocks([f"{e.text}\n"])[0]])
        a, b = lm.blocks(list(e.responses))
        mean_a = direct(lm, prompt, a) / len(a)
        mean_b = direct(lm, prompt, b) / len(b)
        assert pa == pytest.approx(1 / (1 + np.exp(mean_b - mean_a)), abs=1e-4)


def test_tasks_without_candidates_or_comparisons_are_one_line():
    single = [Example(f"e{i}", "the movie was good", i % 2) for i in range(4)]
    with pytest.raises(W2SError, match="task 'plain' has neither; remove eval.zero_shot"):
        kind(single, "plain")
    lonely = [Example(f"e{i}", "q", i % 2, f"g{i}", "a") for i in range(4)]  # one per question
    with pytest.raises(W2SError, match="has neither"):
        kind(lonely, "plain")


def test_a_run_adds_zero_shot_accuracy_with_its_interval(tmp_path, tiny_bert_dir, tiny_llama_dir):
    import w2sgen
    from w2sgen.validate import load_config

    common = dict(examples=comparisons(80), weak_model=str(tiny_bert_dir), strong_model=str(tiny_bert_dir),
                  store=str(tmp_path), quiet=True, splits={"weak_train": 20, "transfer": 20, "test": 20},
                  features={"max_length": 32}, train={"epochs": 2})
    res = w2sgen.run(**common, eval={"zero_shot": str(tiny_llama_dir)})
    z = res.metrics["zero_shot"]
    pred = res.predictions
    acc = float(((pred["zero_shot"] > 0.5) == pred["labels"]).mean())
    assert z["model"] == str(tiny_llama_dir) and z["accuracy"]["value"] == pytest.approx(acc)
    assert z["accuracy"]["low"] <= acc <= z["accuracy"]["high"] and z["accuracy"]["high"] > z["accuracy"]["low"]
    from w2sgen.report.text import classification_table

    table = classification_table([{"id": res.run_id, "config": res.config.to_dict(), "metrics": res.metrics}])
    a = z["accuracy"]
    assert f"zero-shot {tiny_llama_dir}: {a['value']:.3f} [{a['low']:.3f},{a['high']:.3f}]" in table
    with pytest.raises(W2SError, match="is an encoder; zero-shot scoring needs a causal LM"):
        w2sgen.run(**common, eval={"zero_shot": str(tiny_bert_dir)})
    # unset, the option is not in a run's identity (hashes of earlier runs stay); set, it is
    assert load_config(None, []).identity()["eval"] == {"bootstrap": 1000, "confidence": 0.95}
    assert load_config(None, ["eval.zero_shot=smollm2-135m"]).hash() != load_config(None, []).hash()
