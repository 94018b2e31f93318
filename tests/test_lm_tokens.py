"""Label words as single next tokens (lm/tokens.py), on the tiny word-level tokenizer and on a
byte-level BPE trained in memory, where ' yes' and 'yes' are different tokens."""
from __future__ import annotations

import pytest
from conftest import tiny_tokenizer

from w2sgen.errors import W2SError
from w2sgen.lm.tokens import label_token_id, label_token_ids, leading_space


@pytest.fixture(scope="module")
def bpe():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["Answer: yes", "Answer: no", "the movie was good", "yes", "Answer:yes"] * 50
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, name_or_path="tiny-bpe")


def test_leading_space_follows_the_prompt_end():
    assert leading_space("Answer:") and leading_space("")
    assert not leading_space("Answer: ") and not leading_space("Answer:\n")


def test_word_level_ids_are_the_vocabulary_ids():
    tok = tiny_tokenizer(causal=True)
    vocab = tok.get_vocab()
    assert label_token_ids(tok, ["bad", "good"], context="the movie was") == \
        (vocab["bad"], vocab["good"])


def test_bpe_id_is_the_token_appended_after_the_prompt(bpe):
    neg, pos = label_token_ids(bpe, ["no", "yes"], context="Answer:")
    assert bpe.convert_ids_to_tokens([neg, pos]) == ["Ġno", "Ġyes"]
    ctx = bpe("Answer:", add_special_tokens=False)["input_ids"]
    assert bpe("Answer: yes", add_special_tokens=False)["input_ids"] == ctx + [pos]
    # a prompt ending in a newline takes the word without the space
    assert bpe.convert_ids_to_tokens([label_token_id(bpe, "yes", context="x\n")]) == ["yes"]


def test_multi_token_word_names_word_and_model(bpe):
    with pytest.raises(W2SError, match=r"'maybe' is \d+ tokens as ' maybe' for tiny-bpe"):
        label_token_ids(bpe, ["no", "maybe"], context="Answer:")
    with pytest.raises(W2SError, match="for my-model"):
        label_token_id(bpe, "maybe", model="my-model")


def test_word_one_token_only_without_the_space_is_refused_with_a_hint(bpe):
    # 'movie' is a token only after a space in this corpus; 'yes' at a line start is a token,
    # but after a prompt ending in ':' it is written ' yes'
    with pytest.raises(W2SError, match="would be one token") as err:
        label_token_id(bpe, "Answer", context="Q:")
    assert "\n" not in str(err.value)


def test_trailing_space_prompt_that_merges_is_refused(bpe):
    # 'Answer: ' ends in a lone 'Ġ' token, but 'Answer: yes' writes 'Ġyes': 'yes' is not the
    # next token after that prompt
    with pytest.raises(W2SError, match="tokenises differently after the prompt"):
        label_token_id(bpe, "yes", context="Answer: ")


def test_same_token_and_bad_words_are_refused(bpe):
    tok = tiny_tokenizer(causal=True)
    with pytest.raises(W2SError, match="'zzz' is not in the vocabulary"):
        label_token_ids(tok, ["good", "zzz"])  # one [UNK] token is not the word
    with pytest.raises(W2SError, match="same token"):
        label_token_ids(tok, ["good", "good"])
    with pytest.raises(W2SError, match="without surrounding whitespace"):
        label_token_id(bpe, " yes")
