"""Few-shot prompting of a causal LM for binary classification, scored by two label words.

A prompt is an instruction, then demonstrations, then the query, written with a template whose
`{text}` and `{label}` fields are filled per example; the query ends right before the label
word. The label word is the next token (lm/tokens.py): written with a leading space when the
template's text before `{label}` ends without whitespace (`Answer: yes`), as is otherwise. The
model's log p(positive word) - log p(negative word) as that next token is the prompt's log-odds;
its sigmoid is the prompt's soft label.

Prompts are built from blocks, not one string: the instruction, every demonstration and the
query are encoded on their own (a local model's tokeniser start tokens once, in front) and
concatenated (`LanguageModel.blocks` / `join`). Tokenising a joined string can merge tokens
across a block boundary (SmolLM2 writes a blank line followed by text as two newline tokens but
a trailing blank line as one), which would make a prompt depend on how it was cut; block-wise
tokenisation makes it the same however it is cut. Scoring, with the shared-prefix cache, is the
language model's job (lm/local.py, lm/remote.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import W2SError
from .lm.tokens import leading_space

if TYPE_CHECKING:
    from .example import Example

DEFAULT_TEMPLATE = "Input: {text}\nAnswer:{label}\n\n"


@dataclass(frozen=True)
class PromptFormat:
    """How examples become prompt text. `words` are (negative, positive) label words."""

    instruction: str = "Answer yes or no."
    words: tuple[str, str] = ("no", "yes")
    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        if "{text}" not in self.template or not self.template.rstrip().endswith("{label}"):
            raise W2SError("icl template must contain {text} and end with {label} (then "
                           f"whitespace); got {self.template!r}")
        if len(self.words) != 2 or self.words[0] == self.words[1]:
            raise W2SError(f"label words must be two different words; got {list(self.words)}")

    @property
    def tail(self) -> str:
        """The template's text between the input and the label word (e.g. `\\nAnswer:`): what
        every prompt ends with before the word."""
        cut = self.template.rstrip().rindex("{label}")
        return self.template[self.template.index("{text}") + len("{text}"):cut]

    @property
    def space(self) -> str:
        """What goes before a label word: a space unless the prompt ends with whitespace."""
        return " " if leading_space(self.tail) else ""

    def head(self) -> str:
        return f"{self.instruction}\n\n" if self.instruction else ""

    def head_blocks(self) -> list[str]:
        """The blocks a prompt opens with after the start tokens: the instruction's, if any."""
        return [self.head()] if self.head() else []

    def demo(self, text: str, label: int) -> str:
        return self.template.format(text=text, label=self.space + self.words[int(label)])

    def query(self, text: str) -> str:
        """The template up to, not including, the label word."""
        cut = self.template.rstrip().rindex("{label}")
        return self.template[:cut].format(text=text)


def example_text(example: Example) -> str:
    """What a prompt shows of an example: its text, then a newline and its pair's text."""
    return example.text if example.text_pair is None else f"{example.text}\n{example.text_pair}"


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))
