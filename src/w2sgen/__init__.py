"""w2sgen: weak-to-strong generalization experiments, offline-first.

Importing the package sets the offline defaults, for the CLI and for library use alike: the
zoo and BIG-bench need no hub, so Hugging Face libraries are told to stay offline unless the
user has said otherwise (each variable is only set where it is unset: export
HF_HUB_OFFLINE=0 HF_DATASETS_OFFLINE=0 TRANSFORMERS_OFFLINE=0 to fetch hub ids). They take
effect when set before `huggingface_hub` / `transformers` / `datasets` are first imported, so
import w2sgen first.
"""
import os

OFFLINE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",  # weight-init tables would bury our lines
}
for _name, _value in OFFLINE_DEFAULTS.items():
    os.environ.setdefault(_name, _value)
del _name, _value

__version__ = "0.1.0"

__all__ = ["Result", "run", "__version__"]


def __getattr__(name: str):  # `from w2sgen import run`: the API loads on first use, torch later
    if name in ("run", "Result"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'w2sgen' has no attribute {name!r}")
