"""Text generators for generative runs: the registry of backends over the one LM interface.

A backend is a `lm.LanguageModel` (local transformers model or OpenAI-compatible endpoint; the
generation itself lives in lm/local.py and lm/remote.py). A backend turns conversations (OpenAI-style lists of `{"role", "content"}` messages) into
answers. Two are registered in BACKENDS:

- `hf`: a local causal LM (a zoo name such as `smollm2-135m` or `gemma3-270m`, a local folder, or
  a hub id), loaded on first use. Prompts use the tokenizer's chat template when it has one, and
  a plain format otherwise (`system` text, then `Question: ...` / `Answer: ...` blocks; the answer
  is cut where the model starts a new `Question:`). Conversations are generated in batches
  sorted by length and padded on the left, so each row's new tokens follow its own prompt
  directly (decoder-only batching). Temperature 0 is greedy decoding; above 0, sampling with
  `torch.manual_seed(seed)` before each batch. This backend can also be fine-tuned (sft.py).
- `openai`: any server speaking the OpenAI chat-completions protocol (vLLM, `transformers
  serve`, llama.cpp's server, hosted APIs). `base_url` includes the version prefix
  (`http://localhost:8000/v1`); the API key is read from the environment variable named by
  `api_key_env` and is never logged, stored or written into configs. Connection errors, HTTP 429
  and 5xx are retried with exponential backoff; a dead endpoint ends in one line:
  "cannot reach http://...: <reason>; is the server running?". Requests run `concurrency` at a
  time.

`identity` goes into cache keys: it changes when the weights (or the adapter attached to them)
may change.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, Literal

from ..endpoint import Client
from ..lm import (  # noqa: F401  (the conversation types, re-exported for the generative modules)
    PLAIN_STOP,
    Conversation,
    EndpointLM,
    LanguageModel,
    LocalLM,
    Message,
    Sampling,
    merge_system,
    plain_prompt,
    user,
)
from ..options import PositiveInt
from ..registry import Registry

Backend = LanguageModel  # what a generative run needs of a model: name, identity, generate
BACKENDS: Registry[Callable[..., Backend]] = Registry("backend")


class HFBackend(LocalLM):
    """A local causal LM that a run can also fine-tune (sft.py) and generate with a LoRA adapter
    attached. Weights load lazily and once per model and device, however many backends use them."""

    can_finetune = True

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8, precision: str = "auto"):
        super().__init__(model, device, precision, batch_size, shared=True, where="backend precision")
        self._adapter: str | None = None  # hash of the LoRA adapter attached, if any

    @property
    def identity(self) -> str:  # type: ignore[override]
        return super().identity + (f"+lora:{self._adapter}" if self._adapter else "")

    @contextlib.contextmanager
    def adapter(self, state: dict[str, Any], rank: int, tag: str) -> Iterator[None]:
        """Generate with a LoRA adapter (from sft.train_lora) attached; detached afterwards, so
        the base weights serve the next student unchanged."""
        from .sft import attach_lora, detach_lora, load_lora_state

        model, _ = self.loaded()
        peft_model = attach_lora(model, rank)
        load_lora_state(peft_model, state)
        peft_model.eval()
        self._model, self._adapter = peft_model, tag
        try:
            yield
        finally:
            self._model, self._adapter = detach_lora(peft_model), None


@BACKENDS.register("hf")
def hf(device: str = "cpu", *, model: str, batch_size: PositiveInt = 8,
       precision: Literal["auto", "bf16", "fp32", "fp16"] = "auto") -> Backend:
    """A local causal LM (zoo name, folder or hub id); `precision` of generation (auto: bf16
    where the device computes it natively, else fp32)."""
    return HFBackend(model, device, batch_size, precision)


class EndpointBackend(EndpointLM):
    """An OpenAI-compatible chat-completions server (the HTTP client is endpoint.Client)."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
                 concurrency: int = 4):
        super().__init__(Client(base_url, model, api_key_env, timeout, retries, backoff, concurrency))

    def __repr__(self) -> str:  # the client's: never the key
        return repr(self.client)


@BACKENDS.register("openai")
def openai(device: str = "cpu", *, base_url: str, model: str, api_key_env: str | None = None,
           timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
           concurrency: int = 4) -> Backend:
    """An OpenAI-compatible chat-completions endpoint (vLLM, transformers serve, hosted APIs)."""
    return EndpointBackend(base_url, model, api_key_env, timeout, retries, backoff, concurrency)
