"""The independent prompting baseline (benchmarks/fewshot_check.py) and the project's scorer give
the same label-word log-odds for the same prompt (fp32, atol 1e-3), on a tiny LLaMA built in
memory and, marked slow, on SmolLM2-135M. The project's side is called only in
`project_logodds` and `project_prompt` (w2sgen.lm.LocalLM, w2sgen.methods.icl_refine.Refiner)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import sentiment_examples

from w2sgen.lm import LocalLM
from w2sgen.methods.icl_refine import Refiner
from w2sgen.models import MODELS, load, resolve
from w2sgen.prompting import PromptFormat

_path = Path(__file__).resolve().parents[1] / "benchmarks" / "fewshot_check.py"
_spec = importlib.util.spec_from_file_location("fewshot_check", _path)
fc = importlib.util.module_from_spec(_spec)
sys.modules["fewshot_check"] = fc
_spec.loader.exec_module(fc)


def project_logodds(model, tok, words, prefix: list[int], rests: list[list[int]],
                    context: str = "") -> np.ndarray:
    """The project's scorer on token ids: cached prefix, batched continuations, fp32; `context`
    is the prompt's tail (it decides the label word's leading space)."""
    return LocalLM.from_loaded(model, tok, "fp32", batch_size=3).label_logodds(
        prefix, rests, words, context=context)


def project_prompt(model, tok, fmt: PromptFormat, demos, queries) -> tuple[list[int], list[list[int]]]:
    """The project's own prompt ids (blocks tokenised alone): (prefix, continuations)."""
    r = Refiner(LocalLM.from_loaded(model, tok, "fp32"), fmt)
    blocks = r.demos([t for t, _ in demos], [y for _, y in demos])
    return r.start + [t for b in blocks for t in b], r.queries(queries)


def check_same(model, tok, fmt, demos, queries, atol=1e-3):
    """Prompts built by the script, scored by the script (whole and cached) and the project."""
    neg, _ = fc.first_token(tok, fmt.word(0))
    pos, _ = fc.first_token(tok, fmt.word(1))
    built = [fc.prompt_ids(tok, *fc.prompt_text(fmt, tok, demos, q)) for q in queries]
    prefix = built[0][0]
    assert all(p == prefix for p, _ in built)
    rests = [r for _, r in built]
    mine = np.array([fc.logodds(model, prefix + r, neg, pos) for r in rests])
    cached = fc.logodds_cached(model, prefix, rests, neg, pos, pad=tok.pad_token_id or 0, batch=2)
    ours = project_logodds(model, tok, fmt.words, prefix, rests, context=fc.prompt_text(fmt, tok, demos, queries[0])[1])
    np.testing.assert_allclose(cached, mine, atol=1e-4)
    np.testing.assert_allclose(ours, mine, atol=atol)
    return mine


def test_script_and_project_scorer_agree_on_the_tiny_llama(tiny_llama_dir):
    model, tok = load(resolve(str(tiny_llama_dir)), lm_head=True)
    fmt = fc.Format("{text}\n{label}\n", ("bad", "good"), instruction="")
    ex = sentiment_examples(10, seed=2)
    demos = [(e.text, e.label) for e in ex[:4]]
    queries = [e.text for e in ex[4:]]
    mine = check_same(model, tok, fmt, demos, queries)
    assert np.std(mine) > 1e-4  # the queries really score differently
    # Zero-shot (no prefix but the start tokens) too.
    check_same(model, tok, fmt, [], queries)


def test_script_scores_the_projects_own_prompt_the_same(tiny_llama_dir):
    """The project's block-built prompt ids, scored by the script's plain forward pass."""
    model, tok = load(resolve(str(tiny_llama_dir)), lm_head=True)
    pf = PromptFormat("", ("bad", "good"), "{text}\n{label}\n")
    ex = sentiment_examples(9, seed=5)
    prefix, queries = project_prompt(model, tok, pf, [(e.text, e.label) for e in ex[:3]],
                                     [e.text for e in ex[3:]])
    neg, _ = fc.first_token(tok, "bad")
    pos, _ = fc.first_token(tok, "good")
    mine = [fc.logodds(model, prefix + q, neg, pos) for q in queries]
    np.testing.assert_allclose(project_logodds(model, tok, pf.words, prefix, queries, pf.tail), mine,
                               atol=1e-3)


def test_simulated_weak_labels_and_demonstration_order():
    rng = np.random.default_rng(0)
    y = np.array([0] * 50 + [1] * 30)
    w = fc.simulated_weak(y, 0.8, rng)
    assert (w[y == 0] != 0).sum() == 10 and (w[y == 1] != 1).sum() == 6
    idx = np.arange(8)
    yy = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    assert list(yy[fc.order_demos(idx, yy, "alternate", rng)]) == [0, 1] * 4
    assert list(yy[fc.order_demos(idx, yy, "alternate-pos", rng)]) == [1, 0] * 4
    assert list(yy[fc.order_demos(idx, yy, "grouped", rng)]) == [0] * 4 + [1] * 4
    q, pools = fc.choose(np.array([0, 1] * 40), 20, 4, 3, rng)
    assert len(set(q)) == 20 and not set(q) & set(np.concatenate(pools))
    assert all(sorted(np.array([0, 1] * 40)[p]) == [0, 0, 1, 1] for p in pools)


@pytest.mark.slow
@pytest.mark.skipif(not MODELS.get("smollm2-135m").installed(), reason="needs `w2s pull smollm2-135m`")
def test_script_and_project_scorer_agree_on_smollm2():
    model, tok = load(resolve("smollm2-135m"), lm_head=True)
    instruction = "Is the sentiment of each text positive or negative?"
    fmt = fc.Format("input", ("negative", "positive"), instruction=instruction)
    texts = ["The room was dirty and cold.", "Lovely staff, great breakfast!", "Never again.",
             "I would come back any time.", "The doctor listened carefully and helped a lot."]
    demos = [(texts[0], 0), (texts[1], 1)]
    mine = check_same(model, tok, fmt, demos, texts[2:])
    assert mine[0] < mine[1]  # 'Never again.' below 'come back any time'
    # The same prompt text as the project's PromptFormat writes (its ids may differ at block
    # boundaries: it tokenises every block alone).
    pf = PromptFormat(instruction, ("negative", "positive"))
    prefix, rest = fc.prompt_text(fmt, tok, demos, texts[2])
    assert prefix + rest == pf.head() + pf.demo(texts[0], 0) + pf.demo(texts[1], 1) + pf.query(texts[2])
    # Chat prompts: no leading space, the label word starts the assistant's reply.
    check_same(model, tok, fc.Format("input", ("negative", "positive"), chat="single",
                                     instruction=instruction), demos, texts[2:])


def test_selection_reads_weak_train_and_stops_on_a_protected_test(monkeypatch):
    import w2sgen.tasks
    from w2sgen.tasks import Example

    ex = [Example(f"ex{i}", f"text {i}", i % 2) for i in range(300)]
    monkeypatch.setattr(w2sgen.tasks, "load_task", lambda component: ex)
    pool = fc.selection_split("t", (100, 100, 100), 0)
    assert len(pool) == 100
    assert fc.selection_split("t", (100, 100, 100), 0, [[100, 50, 150]]) == pool
    with pytest.raises(SystemExit, match=r"^error: task 't': the selection pool shares 30 example"):
        fc.selection_split("t", (100, 100, 100), 0, [[50, 20, 200]])
