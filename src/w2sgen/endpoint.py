"""A client for OpenAI-compatible HTTP servers (vLLM, `transformers serve`, llama.cpp's server,
hosted APIs), shared by the generative backend and by `icl_refine`'s endpoint scorer.

`base_url` includes the version prefix (`http://localhost:8000/v1`); requests go to
`base_url/<path>` (`chat/completions`, `completions`). The API key is read from the environment
variable named by `api_key_env` and is never logged, stored or shown (it is redacted from error
text). Connection errors, HTTP 429 and 5xx are retried with exponential backoff; other HTTP
errors are not. A dead server ends in one line: "cannot reach http://...: <reason>; is the
server running?". `identity` (base URL and model) goes into cache keys.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any

from .errors import W2SError

RETRY_STATUS = {429, 500, 502, 503, 504}


class Client:
    def __init__(self, base_url: str, model: str, api_key_env: str | None = None,
                 timeout: float = 120.0, retries: int = 4, backoff: float = 1.0,
                 concurrency: int = 4, where: str = "backend openai"):
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise W2SError(f"{where}: base_url must start with http:// or https://, got "
                           f"{base_url!r} (e.g. http://localhost:8000/v1)")
        if not isinstance(model, str) or not model:
            raise W2SError(f"{where}: model must name the served model, got {model!r}")
        for key, v, lo in (("retries", retries, 0), ("concurrency", concurrency, 1)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise W2SError(f"{where}: {key} must be an integer >= {lo}, got {v!r}")
        self.base = base_url.rstrip("/")
        self.model, self.timeout, self.retries = model, float(timeout), retries
        self.backoff, self.concurrency = float(backoff), concurrency
        self.name = f"{model} @ {base_url}"
        self.identity = f"endpoint:{self.base}:{model}"
        self._key = ""
        if api_key_env:
            self._key = os.environ.get(str(api_key_env), "")
            if not self._key:
                raise W2SError(f"{where}: the environment variable {api_key_env} "
                               "(api_key_env) is not set; export it with the API key")

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.base!r}, model={self.model!r})"

    def redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """One request to `base_url/path`, retried with exponential backoff on connection
        errors, 429 and 5xx."""
        url = f"{self.base}/{path}"
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
                raise W2SError(f"{url} refused the request (HTTP {e.code}): {detail}{hint}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
                reason = getattr(e, "reason", e)
                last = f"cannot reach {url}: {self.redact(str(reason))}; is the server running?"
                continue
            try:
                return json.loads(payload)
            except json.JSONDecodeError:
                raise W2SError(f"{url} answered with something that is not JSON: "
                               f"{self.redact(payload[:200].decode('utf-8', 'replace'))!r}") from None
        if last.startswith("cannot reach"):
            raise W2SError(last + f" (tried {self.retries + 1} times)")
        raise W2SError(f"{url} kept failing after {self.retries + 1} tries ({last})")
