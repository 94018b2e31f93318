"""The one LM interface (w2sgen.lm): shared-prefix cached, batched label scoring equals scoring
each whole prompt alone on a tiny Llama and a tiny Qwen2; bad input (label words that are not
one token, prompts beyond the context, a k the transfer split cannot give) is refused in one
line before any weights load."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import save_llama, sentiment_examples, tiny_tokenizer

from w2sgen.errors import W2SError
from w2sgen.lm import LanguageModel, LocalLM, Sampling, user
from w2sgen.methods.icl_refine import Refiner, check_k
from w2sgen.prompting import PromptFormat

FMT = PromptFormat("", ("bad", "good"), "{text}\n{label}\n")


@pytest.fixture(scope="module")
def tiny_qwen2():
    """A randomly initialised Qwen2 (attention biases, tied embeddings) over the tiny tokenizer,
    in memory (saved, AutoTokenizer would swap in Qwen2's own pre-tokenizer)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    tok = tiny_tokenizer(causal=True)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=48, max_position_embeddings=96,
                      pad_token_id=0, eos_token_id=4, tie_word_embeddings=True)
    return Qwen2ForCausalLM(cfg).eval(), tok


def make_lm(arch, llama_dir, qwen2, batch_size):
    if arch == "llama":
        return LocalLM(str(llama_dir), "cpu", "fp32", batch_size=batch_size)
    return LocalLM.from_loaded(*qwen2, "fp32", batch_size=batch_size, name="tiny-qwen2")


@pytest.fixture(scope="module")
def tiny_llama_96(tmp_path_factory):
    return save_llama(tmp_path_factory.mktemp("tiny-llama-96"), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, intermediate_size=48,
                      max_position_embeddings=96)


def whole_prompt_logodds(model, prompt: list[int], neg: int, pos: int) -> float:
    """The reference: one unbatched forward over the whole prompt, no cache, fp32."""
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([prompt])).logits[0, -1].log_softmax(-1)
    return float(logp[pos] - logp[neg])


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_cached_batched_logodds_equal_whole_prompts(arch, tiny_llama_96, tiny_qwen2):
    lm = make_lm(arch, tiny_llama_96, tiny_qwen2, 4)
    refiner = Refiner(lm, FMT)
    ex = sentiment_examples(15, seed=7)
    prefix = refiner.join([refiner.start, *refiner.demos([e.text for e in ex[:4]], [e.label for e in ex[:4]])])
    queries = refiner.queries([e.text for e in ex[4:]])
    assert len({len(q) for q in queries}) > 2 and len(prefix) > 10  # ragged rows, a real prefix
    neg, pos = lm.label_ids(FMT.words, FMT.tail)
    want = np.array([whole_prompt_logodds(lm.model, prefix + q, neg, pos) for q in queries])
    cached = lm.label_logodds(prefix, queries, FMT.words, context=FMT.tail)
    np.testing.assert_allclose(cached, want, atol=1e-4)
    # a token budget that lets batches grow as the rows get shorter (the cache's rows change)
    budget = make_lm(arch, tiny_llama_96, tiny_qwen2, 6)
    budget.max_tokens = 2 * (len(prefix) + max(map(len, queries))) + 8
    np.testing.assert_allclose(budget.label_logodds(prefix, queries, FMT.words, context=FMT.tail),
                               want, atol=1e-4)
    one_by_one = make_lm(arch, tiny_llama_96, tiny_qwen2, 1)
    whole = np.concatenate([one_by_one.label_logodds([], [prefix + q], FMT.words) for q in queries])
    np.testing.assert_allclose(whole, want, atol=1e-4)
    assert np.std(want) > 1e-4  # the queries really score differently
    # leave-one-out prompts share only the start block; the same equality holds there
    texts = [e.text for e in ex]
    hard = np.array([e.label for e in ex])
    batches = [np.arange(0, 5), np.arange(5, 10), np.arange(10, 15)]
    loo = refiner.loo(texts, hard, batches, None)
    demos, qs = refiner.demos(texts, hard), refiner.queries(texts)
    for b in batches:
        for i in b:
            p = refiner.join([refiner.start, *[demos[j] for j in b if j != i], qs[i]])
            assert loo[i] == pytest.approx(whole_prompt_logodds(lm.model, p, neg, pos), abs=1e-4)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_generation_goes_through_the_same_interface(arch, tiny_llama_96, tiny_qwen2):
    lm = make_lm(arch, tiny_llama_96, tiny_qwen2, 2)
    assert isinstance(lm, LanguageModel)
    convs = [user("the movie was good"), user("bad"), user("a nice hotel room and very good food")]
    out = lm.generate(convs, Sampling(max_new_tokens=5))
    assert out == [lm.generate([c], Sampling(max_new_tokens=5))[0] for c in convs]


def test_label_words_that_are_not_one_token_fail_before_weights_load(tiny_llama_96):
    lm = LocalLM(str(tiny_llama_96), "cpu", "fp32")
    with pytest.raises(W2SError, match=r"label word 'good bad' is 2 tokens") as e:
        Refiner(lm, PromptFormat("", ("good bad", "bad"), "{text}\n{label}\n"))
    assert "\n" not in str(e.value)
    with pytest.raises(W2SError, match="label word 'zzz'"):  # not in the vocabulary
        Refiner(lm, PromptFormat("", ("zzz", "qqq"), "{text}\n{label}\n"))
    assert lm._model is None  # the tokenizer was enough


def test_a_prompt_beyond_the_context_fails_before_weights_load(tiny_llama_96):
    lm = LocalLM(str(tiny_llama_96), "cpu", "fp32")
    refiner = Refiner(lm, FMT)
    ex = sentiment_examples(20, seed=2)
    with pytest.raises(W2SError, match=r"a prompt of \d+ tokens is longer than .*context of 96 tokens; "
                                       r"use fewer or shorter demonstrations \(method.k\)"):
        refiner.shared([e.text for e in ex[:19]], [e.label for e in ex[:19]], [ex[19].text], None)
    assert lm._model is None


def test_a_k_the_transfer_split_cannot_give_is_refused():
    check_k(4, 5, "loo", 64)
    with pytest.raises(W2SError, match=r"method.k=5 needs leave-one-out batches of 6 examples, but "
                                       r"transfer has 5; set method.k to at most 4"):
        check_k(5, 5, "loo", 64)
    check_k(8, 72, "fixed", 64)
    with pytest.raises(W2SError, match=r"method.k=9 demonstrations must come from outside each chunk "
                                       r"of 64 queries, but transfer has only 72"):
        check_k(9, 72, "fixed", 64)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_generation_with_a_cached_shared_prefix_equals_generating_each_prompt_whole(arch, tmp_path):
    """Prompts that share their first tokens (a system prompt here; a judge's rubric or icl
    demonstrations in a run) run that prefix once; greedy and seeded sampled answers equal
    those generated without the cache, batched (padding between prefix and own part) or not.
    The weights are initialised at a large scale so that answers depend on the prompt."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from w2sgen.lm.local import MIN_SHARED, shared_length

    sizes = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=48, max_position_embeddings=128, initializer_range=0.5)
    if arch == "llama":
        path = save_llama(tmp_path, **sizes)
        make = lambda bs: LocalLM(str(path), "cpu", "fp32", batch_size=bs)  # noqa: E731
    else:
        torch.manual_seed(0)
        tok = tiny_tokenizer(causal=True)
        model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), pad_token_id=0, eos_token_id=4,
                                             tie_word_embeddings=True, **sizes)).eval()
        make = lambda bs: LocalLM.from_loaded(model, tok, "fp32", batch_size=bs)  # noqa: E731
    system = "good great fine happy love nice bad awful sad hate poor terrible the a movie food was is it"
    convs = [user(t, system=system) for t in
             ["the movie was good", "bad", "a nice hotel room and very good food", "not", "sad sad hate the food"]]
    probe = make(1)
    prompts = [probe.encode(probe.render(c)[0]) for c in convs]
    assert shared_length(prompts) >= MIN_SHARED  # the system prompt is a real shared prefix
    assert shared_length([[1, 2, 3], [1, 2, 3]]) == 2 and shared_length([[5, 1], [6, 1]]) == 0
    for sampling in (Sampling(max_new_tokens=6), Sampling(max_new_tokens=6, temperature=0.8, seed=1)):
        for bs in (1, 2, 5):  # sampled rows draw per batch, so each batch size has its own reference
            plain = make(bs)
            plain.cache_shared_prefix = False
            want = plain.generate(convs, sampling)
            assert len(set(want)) >= 3  # the answers differ between prompts
            if sampling.temperature == 0:
                assert want == make(1).generate(convs, sampling)
            lm = make(bs)
            assert lm.generate(convs, sampling) == want, (bs, sampling)
            # the prefix ran once per call: fewer positions computed than without the cache
            assert lm.tokens < plain.tokens - 3 * shared_length(prompts)


def test_generation_with_a_lora_adapter_attached_uses_the_prefix_cache_the_same(tmp_path):
    """A generative run's students answer with a LoRA adapter attached (a peft model around the
    base): the cached prefix carries the adapter, and answers equal generating without it."""
    from w2sgen.generative.sft import attach_lora, detach_lora

    path = save_llama(tmp_path, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=48, max_position_embeddings=128,
                      initializer_range=0.5)
    base = LocalLM(str(path), "cpu", "fp32", batch_size=2)
    system = "good great fine happy love nice bad awful sad hate poor terrible the a movie food was is it"
    convs = [user(t, system=system) for t in ["the movie was good", "bad", "a nice hotel room", "not"]]
    before = base.generate(convs, Sampling(max_new_tokens=6))
    peft_model = attach_lora(base.model, 4)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)  # a trained adapter: B is no longer zero
    tok = base.tokenizer
    cached = LocalLM.from_loaded(peft_model, tok, "fp32", batch_size=2)
    plain = LocalLM.from_loaded(peft_model, tok, "fp32", batch_size=2)
    plain.cache_shared_prefix = False
    with_adapter = plain.generate(convs, Sampling(max_new_tokens=6))
    assert cached.generate(convs, Sampling(max_new_tokens=6)) == with_adapter
    assert with_adapter != before  # the adapter changes the answers
    detach_lora(peft_model)
