"""Text generators behind one interface: local HF causal LMs and OpenAI-compatible endpoints.

A backend turns conversations (OpenAI-style lists of `{"role", "content"}` messages) into
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
import copy
import json
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..endpoint import Client
from ..errors import W2SError
from ..registry import Registry

Message = dict[str, str]
Conversation = list[Message]

PLAIN_STOP = "\nQuestion:"


@dataclass(frozen=True)
class Sampling:
    max_new_tokens: int = 48
    temperature: float = 0.0  # 0: greedy
    seed: int = 0

    def key(self) -> dict[str, Any]:
        """What of the sampling changes an answer (the seed only matters when sampling)."""
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "seed": self.seed if self.temperature > 0 else None}


class Backend:
    """Interface: `name` (for people), `identity` (for cache keys), `generate`."""

    name: str = ""
    identity: str = ""
    can_finetune: bool = False

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        raise NotImplementedError


BACKENDS: Registry[Callable[..., Backend]] = Registry("backend")


def user(content: str, system: str | None = None) -> Conversation:
    """A one-question conversation, with an optional system prompt."""
    return ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": content}]


def plain_prompt(conversation: Conversation) -> str:
    """The prompt format for models without a chat template: the system text as a header, then
    `Question:`/`Answer:` blocks, ending right after the last `Answer:`."""
    parts = []
    for m in conversation:
        if m["role"] == "system":
            parts.append(m["content"].strip() + "\n\n")
        elif m["role"] == "user":
            parts.append(f"Question: {m['content'].strip()}\nAnswer:")
        elif m["role"] == "assistant":
            parts.append(f" {m['content'].strip()}\n\n")
        else:
            raise W2SError(f"unknown message role {m['role']!r}")
    return "".join(parts)


# --------------------------------------------------------------------------- local models


_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


class HFBackend(Backend):
    """A local causal LM. Weights load lazily, so runs whose steps are all cached load nothing."""

    can_finetune = True

    def __init__(self, model: str, device: str = "cpu", batch_size: int = 8, precision: str = "auto"):
        from ..hardware import resolve_precision
        from ..models import resolve

        if not isinstance(batch_size, int) or batch_size < 1:
            raise W2SError(f"backend hf: batch_size must be a positive integer, got {batch_size!r}")
        self.ref = resolve(model)
        if self.ref.kind != "causal":
            raise W2SError(f"model {model!r} is an encoder; generation needs a causal LM "
                           "(e.g. smollm2-135m)")
        self.name, self.device, self.batch_size = model, device, batch_size
        self.precision = resolve_precision(precision, device, "backend precision")
        self._model: Any = None
        self._tok: Any = None
        self._adapter: str | None = None  # hash of the LoRA adapter attached, if any

    @property
    def identity(self) -> str:  # type: ignore[override]
        # fp32 generations keep the identity they had before precisions were chosen per machine
        half = "" if self.precision == "fp32" else f"@{self.precision}"
        return self.ref.identity + half + (f"+lora:{self._adapter}" if self._adapter else "")

    def loaded(self) -> tuple[Any, Any]:
        if self._model is None:
            key = (self.ref.identity, self.device)
            if key not in _LOADED:  # one copy of the weights however many backends use them
                from ..models import load

                _LOADED[key] = load(self.ref, self.device, lm_head=True)
            self._model, self._tok = _LOADED[key]
        return self._model, self._tok

    @property
    def tokenizer(self) -> Any:
        return self.loaded()[1]

    @property
    def chat(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, conversation: Conversation, answer: str | None = None) -> tuple[str, str]:
        """(prompt text, answer text) for a conversation that ends with a user turn; the answer
        text is what the model should generate for `answer`, end-of-turn markers included."""
        if not self.chat:
            return plain_prompt(conversation), (f" {answer.strip()}" if answer is not None else "")
        tok = self.tokenizer
        conv = conversation
        try:
            prompt = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - templates that reject a system turn raise many types
            conv = merge_system(conversation)
            prompt = tok.apply_chat_template(conv, add_generation_prompt=True, tokenize=False)
        if answer is None:
            return prompt, ""
        full = tok.apply_chat_template(conv + [{"role": "assistant", "content": answer.strip()}],
                                       tokenize=False)
        if not full.startswith(prompt):
            raise W2SError(f"the chat template of {self.name!r} renders a conversation with an "
                           "answer differently from its generation prompt; cannot mask the prompt")
        return prompt, full[len(prompt):]

    def encode(self, text: str) -> list[int]:
        """Prompt ids: a chat template writes its own special tokens; the plain format gets the
        tokenizer's start tokens."""
        return list(self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"])

    def eos_ids(self) -> list[int]:
        model, tok = self.loaded()
        ids = model.generation_config.eos_token_id
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if tok.eos_token_id is not None and tok.eos_token_id not in ids:
            ids.append(tok.eos_token_id)
        return ids

    def clean(self, text: str) -> str:
        if not self.chat:
            text = text.split(PLAIN_STOP)[0]
        return text.strip()

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        import torch

        from ..hardware import autocast

        model, tok = self.loaded()
        prompts = [self.encode(self.render(c)[0]) for c in conversations]
        config = copy.deepcopy(model.generation_config)
        config.max_new_tokens = sampling.max_new_tokens
        config.do_sample = sampling.temperature > 0
        if config.do_sample:
            config.temperature, config.top_k, config.top_p = sampling.temperature, 0, 1.0
        else:
            config.temperature = config.top_k = config.top_p = None
        pad = tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids()[0]
        config.pad_token_id, config.eos_token_id = pad, self.eos_ids()
        device = next(model.parameters()).device
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # little padding
        out: list[str] = [""] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(prompts[i]) for i in rows)
            ids = torch.full((len(rows), width), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for r, i in enumerate(rows):  # left padding: new tokens follow each prompt directly
                ids[r, width - len(prompts[i]):] = torch.tensor(prompts[i])
                mask[r, width - len(prompts[i]):] = 1
            if config.do_sample:
                torch.manual_seed(sampling.seed)
            with torch.inference_mode(), autocast(self.precision, device):
                gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                     generation_config=config)
            for r, i in enumerate(rows):
                out[i] = self.clean(tok.decode(gen[r, width:], skip_special_tokens=True))
            if progress is not None:
                progress.update(len(rows))
        return out

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


def merge_system(conversation: Conversation) -> Conversation:
    """For chat templates without a system role: the system text opens the first user turn."""
    system = [m["content"] for m in conversation if m["role"] == "system"]
    rest = [dict(m) for m in conversation if m["role"] != "system"]
    if system and rest and rest[0]["role"] == "user":
        rest[0]["content"] = "\n\n".join(system) + "\n\n" + rest[0]["content"]
    return rest


@BACKENDS.register("hf")
def hf(device: str = "cpu", *, model: str, batch_size: int = 8, precision: str = "auto") -> Backend:
    """A local causal LM (zoo name, folder or hub id); `precision` of generation (auto: bf16
    where the device computes it natively and fast, else fp32)."""
    return HFBackend(model, device, batch_size, precision)


# --------------------------------------------------------------------------- endpoints


class EndpointBackend(Client, Backend):
    """An OpenAI-compatible chat-completions server (the HTTP client is endpoint.Client)."""

    def __init__(self, base_url: str, model: str, api_key_env: str | None = None,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
                 concurrency: int = 4):
        Client.__init__(self, base_url, model, api_key_env, timeout, retries, backoff, concurrency)
        self.url = f"{self.base}/chat/completions"

    def complete(self, conversation: Conversation, sampling: Sampling) -> str:
        body: dict[str, Any] = {"model": self.model, "messages": conversation,
                                "max_tokens": sampling.max_new_tokens,
                                "temperature": sampling.temperature}
        if sampling.temperature > 0:
            body["seed"] = sampling.seed
        reply = self.post("chat/completions", body)
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise W2SError(f"{self.url} answered without choices[0].message.content: "
                           f"{self.redact(json.dumps(reply)[:200])}") from None
        return (content or "").strip()

    def generate(self, conversations: Sequence[Conversation], sampling: Sampling,
                 progress: Any = None) -> list[str]:
        def one(conv: Conversation) -> str:
            text = self.complete(conv, sampling)
            if progress is not None:
                progress.update(1)
            return text

        with ThreadPoolExecutor(self.concurrency) as pool:
            return list(pool.map(one, conversations))


@BACKENDS.register("openai")
def openai(device: str = "cpu", *, base_url: str, model: str, api_key_env: str | None = None,
           timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
           concurrency: int = 4) -> Backend:
    """An OpenAI-compatible chat-completions endpoint (vLLM, transformers serve, hosted APIs)."""
    return EndpointBackend(base_url, model, api_key_env, timeout, retries, backoff, concurrency)
