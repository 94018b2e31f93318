"""The HTTP backend against a live OpenAI-compatible server: `transformers serve` started on
loopback, serving the tiny chat model. At temperature 0 the server's answers equal the local
backend's on the same weights; a run whose strong model is an endpoint writes the chat-JSONL
training files and stops there (evaluating only tuned models named in `students`); the API key
reaches the server but never the store or the output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from generative_fixtures import (  # noqa: F401
    start_server,
    stop_server,
    tiny_chat_dir,
    write_questions,
)

from w2sgen.cli import main
from w2sgen.generative.backends import EndpointBackend, HFBackend, Sampling, user
from w2sgen.store import Store

SECRET = "sk-w2s-test-never-store-me-1234"


@pytest.fixture(scope="module")
def server(tiny_chat_dir):  # noqa: F811
    proc, url = start_server(str(tiny_chat_dir))
    yield url, str(tiny_chat_dir)
    stop_server(proc)


def test_server_agrees_with_the_local_backend_at_temperature_0(server, tiny_chat_dir):  # noqa: F811
    url, model = server
    convs = [user("the movie was good"), user("food", system="be happy"),
             user("this hotel room is very bad and the service was poor"), user("sad")]
    # the server computes in fp32; greedy tokens of a random tiny model flip under bf16
    local = HFBackend(str(tiny_chat_dir), "cpu", batch_size=4, precision="fp32").generate(convs, Sampling(8))
    remote = EndpointBackend(url, model, concurrency=2).generate(convs, Sampling(8))
    assert remote == local
    assert any(a for a in local)


def test_endpoint_run_exports_chat_jsonl_and_never_stores_the_key(server, tmp_path, monkeypatch, capsys):
    url, model = server
    monkeypatch.setenv("W2S_TEST_API_KEY", SECRET)
    q = write_questions(tmp_path / "q.jsonl", 10)
    endpoint = f"{{name: openai, base_url: '{url}', model: '{model}', api_key_env: W2S_TEST_API_KEY}}"
    store = tmp_path / "store"
    args = ["generate", f"task={{name: custom, questions: {q}, instruction: be happy, style: happy}}",
            f"weak={endpoint}", f"strong={endpoint}", f"judge.backend={endpoint}", "judge.samples=1",
            "methods=[naive, ask_to_improve]", "questions.train=6", "questions.eval=3",
            "generation.max_new_tokens=4", f"store={store}",
            f"students={{naive: {endpoint}}}"]  # "the model tuned on naive's file", served
    assert main(args) == 0
    out = capsys.readouterr()
    assert "not fine-tuned here" in out.out and SECRET not in out.out + out.err
    run = Store(store).runs("done")[-1]
    assert run["config"]["strong"]["options"]["api_key_env"] == "W2S_TEST_API_KEY"
    # ask_to_improve's student was not tuned and named, so it is not evaluated; naive's is
    assert list(run["metrics"]["systems"]) == ["weak", "strong", "student:naive"]
    path = run["metrics"]["methods"]["ask_to_improve"]["training_file"]
    lines = [json.loads(x) for x in Path(path).read_text().splitlines()]
    assert len(lines) == 6
    for line in lines:
        assert list(line) == ["messages"]
        roles = [m["role"] for m in line["messages"]]
        assert roles == ["user", "assistant"] and all(isinstance(m["content"], str) for m in line["messages"])
    naive = [json.loads(x) for x in Path(run["metrics"]["methods"]["naive"]["training_file"]).read_text().splitlines()]
    weak_cached = {m["messages"][1]["content"] for m in naive}
    assert weak_cached  # the weak answers from the server, as targets
    for f in store.rglob("*"):  # the database, its WAL, cached arrays, artifacts
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
