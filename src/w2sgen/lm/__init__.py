"""One interface to the language models the toolkit prompts: local transformers models and
OpenAI-compatible endpoints, for generation and next-token label scoring.

  base.py    LanguageModel (generate; label_logodds over a shared prefix), Sampling, conversations
  local.py   LocalLM: a transformers causal LM; shared-prefix KV cache and batching for scoring
  remote.py  EndpointLM: an OpenAI-compatible server (endpoint.Client); logprobs for scoring
  tokens.py  the single token id of each label word
  lora.py    LoRA adapters on a backbone (train.mode=lora, label_tokens) and the check of their targets

icl_refine's refiner, the generative backends and the judge all use these; nothing else wraps a
model for prompting.
"""
from .base import (
    PLAIN_STOP,
    Conversation,
    LanguageModel,
    Message,
    Sampling,
    merge_system,
    plain_prompt,
    user,
)
from .local import LocalLM
from .remote import API, EndpointLM, word_logprob

__all__ = ["API", "PLAIN_STOP", "Conversation", "EndpointLM", "LanguageModel", "LocalLM",
           "Message", "Sampling", "merge_system", "plain_prompt", "user", "word_logprob"]
