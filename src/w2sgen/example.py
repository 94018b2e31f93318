"""`Example`, the unit every task yields and every later stage consumes: a leaf module, so that
features, splits and training can name it without importing the task loaders."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Example:
    id: str
    text: str
    label: int
    # Examples sharing a group always land in the same split (the candidates of one
    # question), so a question never leaks from transfer into test.
    group: str = ""
    text_pair: Optional[str] = None
    # A task whose data comes already split (the testbed's train_label / train_unlabel / test
    # files) names the example's split here; then the task, not the random splitter, decides
    # membership (see `predefined_splits`). None everywhere else.
    split: Optional[str] = None
    # A pairwise-preference example (tasks.pairwise_example): its two responses (A, B), which
    # `text_pair` shows joined. A reward model reads each side on its own (prompt + response,
    # pairwise.side_examples) and scores it; None for every other kind of example.
    responses: Optional[tuple[str, str]] = None
