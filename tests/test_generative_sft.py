"""LoRA supervised fine-tuning: prompt tokens are masked, the loss is over answer tokens only,
training lowers it, and a cached adapter re-attached to the base model reproduces the trained
student while detaching restores the base weights exactly."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from generative_fixtures import tiny_chat_dir  # noqa: F401  (fixture)

from w2sgen.generative.backends import HFBackend, Sampling, user
from w2sgen.generative.sft import (
    IGNORE,
    answer_loss,
    attach_lora,
    collate,
    detach_lora,
    load_lora_state,
    sft_example,
    train_lora,
)
from w2sgen.models import MODELS

QUESTIONS = ["the movie was good", "food was bad", "this hotel room is very nice", "service poor",
             "a great movie", "sad food"]
ANSWERS = ["happy happy love", "awful", "nice nice great", "terrible", "love it", "sad sad"]


@pytest.mark.parametrize("chat", [False, True])
def test_prompt_tokens_are_masked(tiny_llama_dir, tiny_chat_dir, chat):  # noqa: F811
    b = HFBackend(str(tiny_chat_dir if chat else tiny_llama_dir), "cpu")
    conv = user("the movie was good", system="be happy" if chat else None)
    ids, labels = sft_example(b, conv, "happy love", max_length=64)
    prompt_ids = b.encode(b.render(conv)[0])
    n = len(prompt_ids)
    assert ids[:n] == prompt_ids and labels[:n] == [IGNORE] * n  # exactly the generation prompt
    answer = [t for t in labels if t != IGNORE]
    assert ids[n:] == answer and len(answer) >= 2
    tok = b.tokenizer
    if chat:  # the template's end of turn (a newline here) is trained too
        assert tok.decode(answer).split() == ["happy", "love"] and answer[-1] == tok.convert_tokens_to_ids("\n")
    else:  # the plain format ends the answer with the end token, so the student learns to stop
        assert answer[-1] == tok.eos_token_id
        assert tok.decode(answer[:-1]).split() == ["happy", "love"]
    short_ids, short_labels = sft_example(b, conv, "happy love", max_length=n + 1)
    assert len(short_ids) == len(short_labels) == n + 1


def test_loss_counts_answer_tokens_only(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), "cpu")
    model, tok = b.loaded()
    examples = [sft_example(b, user(q), a, 64) for q, a in zip(QUESTIONS[:3], ANSWERS[:3])]
    batch = collate(examples, tok.pad_token_id)
    with torch.no_grad():
        got = float(answer_loss(model, batch))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    terms = [F.cross_entropy(logits[r, t - 1], batch["input_ids"][r, t]).item()
             for r, (_, labels) in enumerate(examples) for t in range(len(labels)) if labels[t] != IGNORE]
    assert got == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    # unmasking the prompt tokens changes the loss: masked, they did not count
    unmasked = dict(batch, labels=torch.where(batch["attention_mask"] == 1, batch["input_ids"], IGNORE))
    with torch.no_grad():
        assert float(answer_loss(model, unmasked)) != pytest.approx(got, rel=1e-3)


def test_lora_sft_lowers_the_answer_loss_and_round_trips(tiny_chat_dir):  # noqa: F811
    b = HFBackend(str(tiny_chat_dir), "cpu", batch_size=3)
    model, _ = b.loaded()
    base = {k: v.clone() for k, v in model.state_dict().items()}
    convs = [user(q) for q in QUESTIONS]
    out = train_lora(b, convs, ANSWERS, epochs=10, lr=3e-2, batch_size=3, rank=4, max_length=64, seed=0)
    assert out["loss_after"] < 0.2 * out["loss_before"]
    assert out["epoch_loss"][-1] < out["epoch_loss"][0]
    assert all("lora_" in k for k in out["state"])
    # detached: the base model is back, weight for weight
    after = b.loaded()[0].state_dict()
    assert after.keys() == base.keys() and all(torch.equal(after[k], base[k]) for k in base)
    greedy = Sampling(6)
    before_answers = b.generate(convs, greedy)
    with b.adapter(out["state"], 4, "t"):
        assert b.identity.endswith("+lora:t")
        student = b.generate(convs, greedy)
    assert b.generate(convs, greedy) == before_answers  # the adapter left no trace
    hits = sum(s.split()[:len(a.split())] == a.split() for s, a in zip(student, ANSWERS))
    assert hits >= 4, (student, ANSWERS)  # the student learnt its targets
    # the same seed and data give the same adapter
    again = train_lora(b, convs, ANSWERS, epochs=10, lr=3e-2, batch_size=3, rank=4, max_length=64, seed=0)
    assert all((again["state"][k] == out["state"][k]).all() for k in out["state"])


def test_attach_and_detach_restore_the_module_tree(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), "cpu")
    model, _ = b.loaded()
    names = sorted(n for n, _ in model.named_modules())
    peft_model = attach_lora(model, 2)
    load_lora_state(peft_model, {})
    assert detach_lora(peft_model) is model
    assert sorted(n for n, _ in model.named_modules()) == names


@pytest.mark.slow
def test_smollm2_chat_template_masking_and_batched_generation():
    if not MODELS.get("smollm2-135m").installed():
        pytest.skip("smollm2-135m is not installed (w2s pull smollm2-135m)")
    b = HFBackend("smollm2-135m", "cpu", batch_size=3)
    conv = user("How many legs do horses have?", system="You are a pirate.")
    ids, labels = sft_example(b, conv, "Four, matey.", 256)
    tok = b.tokenizer
    n = labels.count(IGNORE)
    assert tok.decode(ids[:n]).endswith("<|im_start|>assistant\n")
    assert tok.decode(ids[n:]) == "Four, matey.<|im_end|>\n"
    convs = [user(q) for q in ("What is 2 plus 3?", "Name a colour.", "Why is the sky blue? Explain.")]
    batched = b.generate(convs, Sampling(8))
    assert batched == [b.generate([c], Sampling(8))[0] for c in convs]
    assert all(batched)
