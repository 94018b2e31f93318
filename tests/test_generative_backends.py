"""Generation backends: greedy determinism, left-padded batches equal one-by-one generation,
seeded sampling, prompt formats; the HTTP backend's retries and its errors against real
loopback servers (a stdlib server that fails on purpose, and a port nobody listens on)."""
from __future__ import annotations

import json
from typing import ClassVar

import pytest
from generative_fixtures import JSONHandler, free_port, loopback, tiny_chat_dir  # noqa: F401  (fixture)

from w2sgen.cli import main
from w2sgen.errors import W2SError
from w2sgen.generative.backends import (
    PLAIN_STOP,
    EndpointBackend,
    HFBackend,
    Sampling,
    merge_system,
    plain_prompt,
    user,
)

PROMPTS = ["the movie was good", "food", "this hotel room is very bad and the service was poor",
           "it", "a nice movie and great food", "sad"]


def test_greedy_is_deterministic_and_batches_equal_one_by_one(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), "cpu", batch_size=4)
    convs = [user(p) for p in PROMPTS]
    assert len({len(b.encode(b.render(c)[0])) for c in convs}) > 3  # ragged: left padding is used
    greedy = Sampling(max_new_tokens=8, temperature=0.0)
    batched = b.generate(convs, greedy)
    assert batched == b.generate(convs, greedy)
    assert batched == [b.generate([c], greedy)[0] for c in convs]
    assert all(a for a in batched)


def test_sampling_is_seeded(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), "cpu", batch_size=8)
    convs = [user(p) for p in PROMPTS]
    s1 = b.generate(convs, Sampling(8, 1.0, seed=1))
    assert s1 == b.generate(convs, Sampling(8, 1.0, seed=1))
    assert s1 != b.generate(convs, Sampling(8, 1.0, seed=2))


def test_plain_format_without_a_chat_template(tiny_llama_dir):
    b = HFBackend(str(tiny_llama_dir), "cpu")
    assert not b.chat
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"}]
    assert plain_prompt(conv) == "Be brief.\n\nQuestion: q1\nAnswer: a1\n\nQuestion: q2\nAnswer:"
    assert b.render(user("q"), "an answer") == ("Question: q\nAnswer:", " an answer")
    assert b.clean(f" four legs{PLAIN_STOP} how many eyes?") == "four legs"


def test_chat_template_is_used_when_the_tokenizer_has_one(tiny_chat_dir):  # noqa: F811
    b = HFBackend(str(tiny_chat_dir), "cpu")
    assert b.chat
    prompt, answer = b.render(user("good movie", system="be happy"), "happy")
    assert prompt == "be happy\ngood movie\nthe" and answer == " happy\n"
    assert merge_system(user("q", system="s")) == [{"role": "user", "content": "s\n\nq"}]


class Flaky(JSONHandler):
    """Fails the first requests (503, then 429), then answers like a chat-completions server."""

    script: ClassVar[list] = [503, 429]
    bodies: ClassVar[list] = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append((body, self.headers.get("Authorization")))
        code = type(self).script.pop(0) if type(self).script else 200
        reply = {"choices": [{"message": {"role": "assistant", "content": " pong "}}]} if code == 200 \
            else {"error": "busy"}
        self.reply(code, reply)


@pytest.fixture
def flaky_server():
    Flaky.script, Flaky.bodies = [503, 429], []
    with loopback(Flaky) as url:
        yield url


def test_endpoint_retries_5xx_and_429_then_succeeds(flaky_server, monkeypatch):
    monkeypatch.setenv("W2S_TEST_KEY", "sk-test-123")
    b = EndpointBackend(flaky_server, "m", api_key_env="W2S_TEST_KEY", retries=3, backoff=0.01)
    assert b.generate([user("ping", system="s")], Sampling(5, 0.0)) == ["pong"]
    assert len(Flaky.bodies) == 3  # 503, 429, then the answer
    body, auth = Flaky.bodies[-1]
    assert body == {"model": "m", "messages": user("ping", system="s"), "max_tokens": 5, "temperature": 0.0}
    assert auth == "Bearer sk-test-123"
    assert "sk-test-123" not in repr(b)


def test_endpoint_gives_up_after_its_retries(flaky_server):
    Flaky.script = [500] * 10
    b = EndpointBackend(flaky_server, "m", retries=2, backoff=0.01)
    with pytest.raises(W2SError, match=r"kept failing after 3 tries \(HTTP 500"):
        b.generate([user("ping")], Sampling(5))


def test_endpoint_client_errors_are_not_retried(flaky_server):
    Flaky.script = [401, 200]
    b = EndpointBackend(flaky_server, "m", retries=3, backoff=0.01)
    with pytest.raises(W2SError, match=r"refused the request \(HTTP 401\).*check api_key_env"):
        b.generate([user("ping")], Sampling(5))
    assert len(Flaky.bodies) == 1


def test_dead_endpoint_is_one_clear_line(tmp_path, capsys):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    b = EndpointBackend(url, "m", retries=1, backoff=0.01)
    with pytest.raises(W2SError) as e:
        b.generate([user("ping")], Sampling(5))
    msg = str(e.value)
    assert msg.startswith(f"cannot reach {url}/chat/completions: ") and "is the server running?" in msg
    assert "\n" not in msg
    cfg = tmp_path / "dead.yaml"
    cfg.write_text(f"weak: {{name: openai, base_url: '{url}', model: m, retries: 0}}\n"
                   f"strong: {{name: openai, base_url: '{url}', model: m, retries: 0}}\n"
                   f"judge: {{samples: 0}}\nmethods: [naive]\nstore: {tmp_path / 'store'}\n"
                   "task: {name: custom, questions: " + str(_questions(tmp_path)) + ", instruction: x, style: y}\n"
                   "questions: {train: 2, eval: 2}\n")
    assert main(["generate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: cannot reach http://127.0.0.1:") and err.count("\n") == 0


def _questions(tmp_path):
    from generative_fixtures import write_questions

    return write_questions(tmp_path / "q.jsonl", 4)


def test_endpoint_config_errors(monkeypatch):
    monkeypatch.delenv("W2S_NOT_SET", raising=False)
    with pytest.raises(W2SError, match="W2S_NOT_SET .*is not set"):
        EndpointBackend("http://127.0.0.1:1/v1", "m", api_key_env="W2S_NOT_SET")
    with pytest.raises(W2SError, match="base_url must start with http"):
        EndpointBackend("localhost:8000", "m")
