"""Fixtures and helpers shared by the tests/test_generative_*.py files (imported by them)."""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from w2sgen.generative.backends import Backend

# A chat template for the tiny word-level Llama: messages one per line, then "the" opens the
# answer (every word must be in the tiny vocabulary).
TINY_CHAT_TEMPLATE = ("{% for m in messages %}{% if m['role'] == 'assistant' %}the {% endif %}"
                      "{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}the{% endif %}")
WORDS = ["good", "great", "fine", "happy", "love", "nice", "bad", "awful", "sad", "hate", "poor", "terrible", "movie", "food"]


@pytest.fixture(scope="session")
def tiny_chat_dir(tiny_llama_dir, tmp_path_factory) -> Path:
    """A tiny Llama over the conftest word-level tokenizer, with a chat template (so it can be
    served and fine-tuned as a chat model). Initialised with a larger spread than the default
    (0.2, not 0.02), so its logits can become peaked and LoRA can fit targets in a few steps."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    path = tmp_path_factory.mktemp("tiny-chat")
    tok = AutoTokenizer.from_pretrained(tiny_llama_dir)
    tok.chat_template = TINY_CHAT_TEMPLATE
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=48, max_position_embeddings=128,
                      pad_token_id=0, eos_token_id=4, initializer_range=0.2,
                      architectures=["LlamaForCausalLM"])
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_questions(path: Path, n: int, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q{i}", "question": " ".join(rng.choice(WORDS) for _ in range(4)),
                                "answer": str(i)}) + "\n")
    return path


class Recorder(Backend):
    """A stand-in generator that records every conversation and answers from a function."""

    name = identity = "recorder"

    def __init__(self, reply=lambda conv: "ok"):
        self.reply, self.seen = reply, []

    def generate(self, conversations, sampling, progress=None):
        self.seen += [list(c) for c in conversations]
        return [self.reply(c) for c in conversations]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, timeout: float = 120.0):
    """`transformers serve` on loopback, serving `model`; (process, base_url). Skips the test when
    the serving extras are missing."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs fastapi, uvicorn, pydantic and openai "
                    "(pip install -e '.[test]')")
    exe = Path(sys.executable).with_name("transformers")
    if not exe.exists():
        pytest.skip("the `transformers` command is not installed next to this Python")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([str(exe), "serve", model, "--host", "127.0.0.1", "--port", str(port),
                             "--device", "cpu", "--dtype", "float32", "--log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("transformers serve exited: " + proc.stderr.read().decode()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.5)
    stop_server(proc)
    raise RuntimeError(f"transformers serve did not answer /health within {timeout:.0f} s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class JSONHandler(BaseHTTPRequestHandler):
    """Base of the loopback test servers: JSON replies, no request logging."""

    def reply(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextmanager
def loopback(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server on a free loopback port; yields its `/v1` base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
