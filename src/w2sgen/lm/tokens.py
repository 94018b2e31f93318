"""The token id of each label word, for a tokenizer.

Convention: a label word is the *next token* after the prompt. A prompt ends where the label
starts; if it ends without whitespace (``"...Answer:"``) the word is written with one leading
space (``" yes"``), as text would continue; if it ends with whitespace (``"...Answer: "`` or a
newline) the word is written as is (``"yes"``). The word in that written form must be exactly one
token, else training or scoring would target only its first piece and two words could share it.

Where the prompt's tail is known (`context`, e.g. ``"Answer:"``), the id is what the tokenizer
actually appends after it: the tokens of ``context + form`` less those of ``context``. That must be
the prompt's own tokens followed by one new token, and it must equal the word's token on its own;
otherwise the word merges with the prompt (or splits) and the next-token probability would not be
the word's. Tokenizers that write a space as a separate token or glue it onto the previous token
are caught this way.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional

from ..errors import W2SError


def leading_space(prompt_tail: str) -> bool:
    """Whether a label word after a prompt ending in `prompt_tail` is written with a leading
    space (the prompt ends without whitespace)."""
    return not prompt_tail or not prompt_tail[-1].isspace()


def _name(tokenizer: Any, model: Optional[str]) -> str:
    return model or str(getattr(tokenizer, "name_or_path", "") or "this tokenizer")


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def start_ids(tokenizer: Any) -> list[int]:
    """The tokens `tokenizer` puts in front of every text (a BOS token, or none): the opening
    block of a local prompt (prompting.py)."""
    return list(tokenizer("", add_special_tokens=True)["input_ids"])


def block_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Each text tokenised on its own, without start tokens: the prompt blocks a local prompt
    is joined from (prompting.py). The one implementation for ICL scoring (lm/local.py) and
    train.mode=label_tokens (label_tokens.py), so both see the same token ids."""
    if not texts:
        return []
    return [list(x) for x in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


def label_token_id(tokenizer: Any, word: str, *, context: str = "", model: Optional[str] = None
                   ) -> int:
    """The single token id of label `word` as the next token after a prompt ending in `context`
    (see the module docstring); a W2SError names the word and the model when there is none."""
    name = _name(tokenizer, model)
    if not word or word != word.strip():
        raise W2SError(f"label word {word!r} must be a non-empty word without surrounding "
                       "whitespace (the leading space follows from the prompt)")
    space = leading_space(context)
    form = " " + word if space else word
    ids = _encode(tokenizer, form)
    if len(ids) != 1:
        other = _encode(tokenizer, word if space else " " + word)
        hint = (f"; {(word if space else ' ' + word)!r} would be one token, but the prompt "
                f"{'ends without' if space else 'ends with'} whitespace" if len(other) == 1 else "")
        raise W2SError(f"label word {word!r} is {len(ids)} tokens as {form!r} for {name} (a "
                       f"label must be one token){hint}; choose another word in the label words "
                       "option")
    unk = getattr(tokenizer, "unk_token_id", None)
    if unk is not None and ids[0] == unk and word != getattr(tokenizer, "unk_token", None):
        raise W2SError(f"label word {word!r} is not in the vocabulary of {name} (it tokenises "
                       "to the unknown token); choose another word in the label words option")
    if context:
        before = _encode(tokenizer, context)
        after = _encode(tokenizer, context + form)
        if after[:len(before)] != before or len(after) != len(before) + 1 or after[-1] != ids[0]:
            raise W2SError(f"label word {word!r} does not follow the prompt {context[-20:]!r} as "
                           f"one token for {name} (it tokenises differently after the prompt than "
                           "on its own); change the label words or the prompt template's end")
    return ids[0]


def label_token_ids(tokenizer: Any, words: Sequence[str], *, context: str = "",
                    model: Optional[str] = None) -> tuple[int, ...]:
    """The single token id of each label word (in order) after a prompt ending in `context`;
    the ids must differ."""
    ids = tuple(label_token_id(tokenizer, w, context=context, model=model) for w in words)
    if len(set(ids)) != len(ids):
        raise W2SError(f"label words {list(words)} map to the same token for "
                       f"{_name(tokenizer, model)}; choose words that are different tokens")
    return ids
