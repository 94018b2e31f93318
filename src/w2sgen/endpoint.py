"""A client for OpenAI-compatible HTTP servers (vLLM, `transformers serve`, llama.cpp's server,
hosted APIs), under the one endpoint language model (lm.EndpointLM: generation for the generative
backends and the judge, label scoring for `icl_refine`), and the one redaction of secrets (`redact`) used wherever text
may carry one.

`base_url` includes the version prefix (`http://localhost:8000/v1`); requests go to
`base_url/<path>` (`chat/completions`, `completions`). The API key is read from the environment
variable named by `api_key_env` and is never logged, stored or shown: `redact` removes it, any
other key-shaped string and the `user:password@` part of URLs from error text, and the store
applies it to every config, metric and error it records. A key pasted into `api_key_env` itself
is refused with a message that does not repeat it. Connection errors, HTTP 429 and 5xx are
retried with exponential backoff; other HTTP errors are not. A dead server ends in one line:
"cannot reach http://...: <reason>; is the server running?". `identity` (base URL and model)
goes into cache keys.
"""
from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from typing import Any

from .errors import W2SError

MASK = "***"
# Shapes of secrets, by family: provider key prefixes (OpenAI sk-/sk-proj-, Anthropic sk-ant-,
# Hugging Face hf_, GitHub ghp_/gho_/ghs_/github_pat_, GitLab glpat-, Slack xox?-, AWS AKIA,
# Google AIza; Groq gsk_, xAI xai-, Perplexity pplx-, Replicate r8_, Fireworks fw_, Stripe
# sk_live_/sk_test_/rk_*/pk_*/whsec_, NVIDIA nvapi-), bearer tokens, JWTs, 32- and 64-digit hex
# secrets, and runs of 20+ letters and digits mixing cases and digits, alone or after a short
# prefix (`abc_`, `key-`). Config hashes and cache keys (16 and 24 hex digits), 40-digit commit
# ids and hyphenated model names are left alone.
KEY_PATTERNS = [
    re.compile(r"\b(?:sk|pk|rk)-(?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\b(?:hf|ghp|gho|ghs|ghu|ghr|github_pat|glpat|xox[abprs])[_-](?=[A-Za-z0-9_\-]*[0-9])[A-Za-z0-9_\-]{10,}"),
    re.compile(r"\b(?:gsk|r8|fw|xai|pplx|nvapi|whsec|(?:sk|rk|pk)_(?:live|test))[_-][A-Za-z0-9]{16,}"),
    re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{64}|[0-9a-fA-F]{32})(?![0-9A-Za-z])"),
    re.compile(r"\b[A-Za-z0-9]{2,6}[_-](?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[0-9])"
               r"[A-Za-z0-9]{20,}(?![A-Za-z0-9_\-])"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)(?<=bearer )[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*[A-Z])"
               r"(?=[A-Za-z0-9]*[0-9])[A-Za-z0-9]{24,}(?![A-Za-z0-9_\-])"),
]
USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@?#]+@")
QUERY = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s?#]*\?)([^\s#]*)")  # a URL's query string
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ENV_UPPER = re.compile(r"[A-Z_][A-Z0-9_]*")  # what an api_key_env may be stored and shown as


def redact(text: str, *secrets: str) -> str:
    """`text` with every given secret, every key-shaped string and every URL's userinfo
    (`https://user:KEY@host` -> `https://***@host`) replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, MASK)
    text = USERINFO.sub(lambda m: m.group(1) + MASK + "@", text)
    text = QUERY.sub(lambda m: m.group(1) + re.sub(r"=[^&;]*?(?=[&;]|[:,.)]?$)", "=" + MASK, m.group(2)), text)
    for pattern in KEY_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def redact_tree(obj: Any) -> Any:
    """A JSON-like value (a config, metrics) with `redact` applied to every string in it,
    mapping keys included."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {redact(k) if isinstance(k, str) else k:
                env_shown(v) if k == "api_key_env" and isinstance(v, str) else redact_tree(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_tree(v) for v in obj]
    return obj


def looks_like_key(value: str) -> bool:
    return redact(value) != value


def env_shown(value: str) -> str:
    """An api_key_env value as it may be stored or shown: a conventional variable name
    (upper case) as it is; anything else, which may be a key typed in the wrong place, masked."""
    return value if ENV_UPPER.fullmatch(value) and not looks_like_key(value) else MASK


def check_api_key_env(value: Any, where: str) -> None:
    """`api_key_env` names an environment variable; a key pasted there is refused without
    being repeated."""
    if value is None:
        return
    if not isinstance(value, str) or not ENV_NAME.fullmatch(value) or looks_like_key(value):
        shown = MASK if isinstance(value, str) and (looks_like_key(value) or len(value) > 40) \
            else repr(value)
        raise W2SError(f"{where}: api_key_env must be the name of an environment variable that "
                       f"holds the key (e.g. OPENAI_API_KEY), not the key itself; got {shown}")


ENDPOINT_FORM = ("an endpoint mapping {name: openai, base_url: http://host:8000/v1, model: NAME, "
                 "api_key_env: VAR}")
ENDPOINT_OPTIONS = ("name", "base_url", "model", "api_key_env", "api", "top_logprobs", "timeout",
                    "retries", "backoff", "concurrency")


def check_endpoint(spec: Any, where: str) -> None:
    """An endpoint mapping as a config gives it (`{name: openai, base_url, model, ...}`),
    checked without contacting the server: for config-time checks (the key's variable is read
    when the client is made)."""
    if not isinstance(spec, dict) or spec.get("name") != "openai":
        raise W2SError(f"{where} as a mapping is {ENDPOINT_FORM}; got name "
                       f"{redact(repr(spec.get('name') if isinstance(spec, dict) else spec))}")
    unknown = sorted(set(spec) - set(ENDPOINT_OPTIONS))
    if unknown:
        hint = " (put the key in an environment variable and name it in api_key_env)" \
            if "api_key" in unknown else ""
        raise W2SError(f"{where}: unknown endpoint option(s) {', '.join(map(repr, unknown))}{hint}; "
                       f"valid: {', '.join(ENDPOINT_OPTIONS)}")
    _check_base_url(spec.get("base_url"), where)
    model = spec.get("model")
    if not isinstance(model, str) or not model:
        raise W2SError(f"{where}: model must name the served model (e.g. model: "
                       f"meta-llama/Llama-3.1-8B-Instruct), got {redact(repr(model))}")
    check_api_key_env(spec.get("api_key_env"), where)


def _check_base_url(base_url: Any, where: str) -> None:
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise W2SError(f"{where}: base_url must start with http:// or https://, got "
                       f"{redact(repr(base_url))} (e.g. http://localhost:8000/v1)")


RETRY_STATUS = {429, 500, 502, 503, 504}


class Client:
    def __init__(self, base_url: str, model: str, api_key_env: str | None = None,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
                 concurrency: int = 4, where: str = "backend openai"):
        _check_base_url(base_url, where)
        if not isinstance(model, str) or not model:
            raise W2SError(f"{where}: model must name the served model, got {redact(repr(model))}")
        check_api_key_env(api_key_env, where)
        for key, v, lo in (("retries", retries, 0), ("concurrency", concurrency, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise W2SError(f"{where}: {key} must be an integer >= {lo}, got {v!r}")
        self.base = base_url.rstrip("/")
        self.model, self.timeout, self.retries = model, float(timeout), retries
        self.backoff, self.concurrency = float(backoff), concurrency
        self.name = redact(f"{model} @ {base_url}")  # shown and stored: no userinfo
        self.identity = f"endpoint:{self.base}:{model}"
        self._key = ""
        if api_key_env:
            self._key = os.environ.get(api_key_env, "")
            if not self._key:
                named = f"{api_key_env} (api_key_env)" if env_shown(api_key_env) != MASK else \
                    "named in api_key_env (not shown: not an UPPER_CASE name)"
                raise W2SError(f"{where}: the environment variable {named} is not set; export it "
                               "with the API key")

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({redact(self.base)!r}, model={self.model!r})"

    def redact(self, text: str) -> str:
        """`text` without this client's key, key-shaped strings or URL userinfo."""
        return redact(text, self._key)

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request to `base_url/path`, retried with exponential backoff on connection
        errors, 429 and 5xx."""
        url = f"{self.base}/{path}"
        shown = redact(url)  # what messages say: no userinfo
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(30.0, self.backoff * 2 ** (attempt - 1)))
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    payload = response.read()
            except urllib.error.HTTPError as e:
                detail = self.redact(e.read().decode("utf-8", "replace").strip().replace("\n", " ")[:300])
                if e.code in RETRY_STATUS:
                    last = f"HTTP {e.code}: {detail}"
                    continue
                hint = "; check api_key_env" if e.code in (401, 403) else ""
                raise W2SError(f"{shown} refused the request (HTTP {e.code}): {detail}{hint}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                last = f"cannot reach {shown}: {self.redact(str(reason))}; is the server running?"
                continue
            try:
                return json.loads(payload)
            except json.JSONDecodeError:
                raise W2SError(f"{shown} answered with something that is not JSON: "
                               f"{self.redact(payload[:200].decode('utf-8', 'replace'))!r}") from None
        if last.startswith("cannot reach"):
            raise W2SError(last + f" (tried {self.retries + 1} times)")
        raise W2SError(f"{shown} kept failing after {self.retries + 1} tries ({last})")
