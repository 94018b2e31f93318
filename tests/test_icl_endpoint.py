"""icl_refine against an OpenAI-compatible endpoint: label words are read from the server's top
log-probabilities, and on a loopback server that runs the tiny LLaMA the refined log-odds equal
the local prefix-cached scorer's; a server without log-probabilities and malformed `method.lm`
mappings give one clear error."""
from __future__ import annotations

import json
import threading
from typing import ClassVar

import numpy as np
import pytest
import torch
from conftest import sentiment_examples
from generative_fixtures import JSONHandler, loopback

from w2sgen import pipeline
from w2sgen.endpoint import Client
from w2sgen.errors import W2SError
from w2sgen.lm import EndpointLM, LocalLM, word_logprob
from w2sgen.methods.icl_refine import Refiner, loo_batches
from w2sgen.models import load, resolve
from w2sgen.prompting import PromptFormat
from w2sgen.validate import load_config

FMT = PromptFormat("", ("bad", "good"), "{text}\n{label}\n")


def test_word_logprob_sums_the_prefix_tokens_of_one_word_only():
    top = {" Pos": -1.0, " pos": -2.0, " n": -0.5, " ne": -3.0, "itive": -0.1, " ": -0.2, "x": -4.0}
    assert word_logprob(top, "positive", "negative") == pytest.approx(np.logaddexp(-1.0, -2.0))
    assert word_logprob(top, "negative", "positive") == pytest.approx(np.logaddexp(-0.5, -3.0))
    assert word_logprob({" no": -1.0, " n": -0.1}, "no", "nope") is None  # both tokens prefix both
    assert word_logprob({"x": -1.0}, "yes", "no") is None
    with pytest.raises(W2SError, match="one is a prefix of the other"):
        EndpointLM(Client("http://127.0.0.1:1/v1", "m")).check_words(("no", "nope"))


class TinyLM(JSONHandler):
    """A completions / chat-completions server that runs the tiny LLaMA on the prompt text and
    returns the next token's top log-probabilities (chat: the user message is the raw prompt)."""

    model: ClassVar = None
    tok: ClassVar = None
    bodies: ClassVar[list] = []
    logprobs: ClassVar[bool] = True
    lock = threading.Lock()

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append((self.path, body))
        chat = self.path.endswith("/chat/completions")
        prompt = body["messages"][-1]["content"] if chat else body["prompt"]
        n = body["top_logprobs"] if chat else body["logprobs"]
        ids = self.tok(prompt, add_special_tokens=True)["input_ids"]
        with self.lock, torch.no_grad():
            logp = self.model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
        values, index = logp.topk(min(n, logp.shape[0]))
        top = [(" " + self.tok.convert_ids_to_tokens(int(i)), float(v)) for v, i in zip(values, index)]
        choice: dict = {"text": top[0][0]}
        if type(self).logprobs:
            choice["logprobs"] = ({"content": [{"token": top[0][0], "logprob": top[0][1],
                                                "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]}
                                  if chat else {"tokens": [top[0][0]], "top_logprobs": [dict(top)]})
        self.reply(200, {"choices": [choice]})


@pytest.fixture
def tiny_server(tiny_llama_dir):
    TinyLM.model, TinyLM.tok = load(resolve(str(tiny_llama_dir)), lm_head=True)
    TinyLM.bodies, TinyLM.logprobs = [], True
    with loopback(TinyLM) as url:
        yield url


@pytest.mark.parametrize("api", ["completions", "chat"])
def test_endpoint_scores_equal_the_local_prefix_cached_scores(tiny_server, tiny_llama_dir, api):
    texts = [e.text for e in sentiment_examples(15, seed=5)]
    hard = np.array([e.label for e in sentiment_examples(15, seed=5)])
    batches = loo_batches(hard, 2, False, np.random.default_rng(0))
    local = Refiner(LocalLM(str(tiny_llama_dir), "cpu", "fp32", batch_size=4), FMT)
    remote = Refiner(EndpointLM(Client(tiny_server, "tiny", concurrency=3), api, 64), FMT)
    want = local.loo(texts, hard, batches, None)
    np.testing.assert_allclose(remote.loo(texts, hard, batches, None), want, atol=1e-4)
    np.testing.assert_allclose(remote.shared(texts[:3], [0, 1, 1], texts[3:], None),
                               local.shared(texts[:3], [0, 1, 1], texts[3:], None), atol=1e-4)
    assert np.std(want) > 1e-4
    assert remote.report() == {"endpoint_prompts": 27, "endpoint_bounded": 0, "endpoint_unscored": 0}
    path, body = TinyLM.bodies[0]
    assert path == f"/v1/{'chat/completions' if api == 'chat' else 'completions'}"
    assert body["max_tokens"] == 1 and body["temperature"] == 0 and body["model"] == "tiny"
    # A short top list: a missing label word is bounded by the smallest listed log-probability.
    short = Refiner(EndpointLM(Client(tiny_server, "tiny"), api, 2), FMT)
    got = short.loo(texts, hard, batches, None)
    r = short.report()
    assert r["endpoint_bounded"] + r["endpoint_unscored"] > 0
    assert np.all(got[np.abs(want) > 0] != 0) or r["endpoint_unscored"] > 0


def test_pipeline_refines_through_an_endpoint_like_the_local_lm(tmp_path, tiny_server, tiny_bert_dir, tiny_llama_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(200)))
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
              "splits.weak_train=60", "splits.transfer=60", "splits.test=60", "train.epochs=2",
              "eval.bootstrap=50", "features.precision=fp32", "features.max_length=32", "device=cpu",
              f"store={tmp_path / 'store'}", "method.name=icl_refine", "method.k=2",
              "method.words=[bad, good]", "method.template={text}\n{label}\n",
              "method.eval_size=20", "method.precision=fp32"]
    local = pipeline.run(load_config(None, [*common, f"method.lm={tiny_llama_dir}"]), quiet=True)
    remote = pipeline.run(load_config(None, [
        *common, f"method.lm={{name: openai, base_url: '{tiny_server}', model: tiny, top_logprobs: 64}}"]),
        quiet=True)
    a, b = local["metrics"]["method"], remote["metrics"]["method"]
    assert b["lm"] == f"tiny @ {tiny_server}" and not b["cached"]
    assert b["endpoint_bounded"] == 0 and b["endpoint_unscored"] == 0
    assert b["endpoint_prompts"] == 60 + 3 * 20  # transfer, then three prompting baselines
    assert b["refined_label_accuracy"] == a["refined_label_accuracy"]
    for name in ("zero_shot", "fewshot_ground_truth", "fewshot_weak"):
        assert b["prompting"][name] == a["prompting"][name]


def test_endpoint_errors_are_one_clear_line(tmp_path, tiny_server, tiny_bert_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(150)))
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
              "splits.weak_train=40", "splits.transfer=40", "splits.test=40", "train.epochs=1",
              "eval.bootstrap=20", "features.max_length=32", "device=cpu", f"store={tmp_path / 's'}",
              "method.name=icl_refine", "method.k=1", "method.words=[bad, good]", "method.eval_size=0"]
    TinyLM.logprobs = False
    with pytest.raises(W2SError, match=r"/completions returned no top log-probabilities"):
        pipeline.run(load_config(None, [*common, f"method.lm={{name: openai, base_url: '{tiny_server}', model: t}}"]),
                     quiet=True)
    with pytest.raises(W2SError, match=r"method.lm as a mapping is an endpoint mapping \{name: openai, base_url"):
        pipeline.run(load_config(None, [*common, "method.lm={name: vllm, base_url: 'http://x/v1', model: t}"]),
                     quiet=True)
    with pytest.raises(W2SError, match=r"method.lm: base_url must start with http"):
        pipeline.run(load_config(None, [*common, "method.lm={name: openai, base_url: 'localhost:8000', model: t}"]),
                     quiet=True)
    with pytest.raises(W2SError, match=r"endpoint api must be one of completions, chat"):
        pipeline.run(load_config(None, [*common, f"method.lm={{name: openai, base_url: '{tiny_server}', model: t, api: x}}"]),
                     quiet=True)
