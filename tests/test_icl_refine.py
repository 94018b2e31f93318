"""ICL refinement: prompt scoring with a cached shared prefix equals scoring whole prompts, a
query's own weak label never reaches its prompt, batches and demonstrations are built as
documented, and the method runs end to end in the pipeline."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import sentiment_examples

from w2sgen import pipeline
from w2sgen.errors import W2SError
from w2sgen.lm import LocalLM
from w2sgen.methods.icl_refine import Refiner, calibrated, loo_batches, pick_demos
from w2sgen.models import MODELS, load, resolve
from w2sgen.prompting import PromptFormat
from w2sgen.report import latest_done, plot_refinement_k, refinement_markdown
from w2sgen.store import Store
from w2sgen.validate import load_config

TINY_FORMAT = PromptFormat("", ("bad", "good"), "{text}\n{label}\n")


def direct_logodds(model, ids: list[int], neg: int, pos: int) -> float:
    """The reference: one unbatched forward pass over the whole prompt, no cache, fp32."""
    with torch.no_grad():
        logp = model(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(-1)
    return float(logp[pos] - logp[neg])


def test_prefix_cache_and_batching_equal_whole_prompts_on_the_tiny_llama(tiny_llama_dir):
    model, tok = load(resolve(str(tiny_llama_dir)), lm_head=True)
    pt = Refiner(LocalLM.from_loaded(model, tok, "fp32", batch_size=4), TINY_FORMAT)
    ex = sentiment_examples(12, seed=3)
    demos = pt.demos([e.text for e in ex[:3]], [e.label for e in ex[:3]])
    prefix = pt.start + [t for d in demos for t in d]
    queries = pt.queries([e.text for e in ex[3:]])
    assert len({len(q) for q in queries}) > 1  # ragged: padding is exercised
    neg, pos = pt.lm.label_ids(TINY_FORMAT.words, TINY_FORMAT.tail)
    want = np.array([direct_logodds(model, prefix + q, neg, pos) for q in queries])

    cached = LocalLM.from_loaded(model, tok, "fp32", batch_size=4).label_logodds(
        prefix, queries, TINY_FORMAT.words)
    whole = LocalLM.from_loaded(model, tok, "fp32", batch_size=3).label_logodds(
        [], [prefix + q for q in queries], TINY_FORMAT.words)
    np.testing.assert_allclose(cached, want, atol=1e-5)
    np.testing.assert_allclose(whole, want, atol=1e-5)
    assert np.std(want) > 1e-4  # the queries really score differently


@pytest.mark.skipif(not MODELS.get("smollm2-135m").installed(), reason="needs `w2s pull smollm2-135m`")
def test_prefix_cache_equals_whole_prompts_on_smollm2_and_blocks_tokenise_alone():
    model, tok = load(resolve("smollm2-135m"), lm_head=True)
    fmt = PromptFormat("Is the sentiment of each sentence positive or negative?", ("negative", "positive"))
    lm = LocalLM.from_loaded(model, tok, "fp32", batch_size=2)
    pt = Refiner(lm, fmt)
    texts = ["The room was dirty and cold.", "Lovely staff, great breakfast!", "Never again.",
             "I would come back any time.", "The doctor listened carefully and helped a lot."]
    demos = pt.demos(texts[:2], [0, 1])
    prefix = pt.start + demos[0] + demos[1]
    queries = pt.queries(texts[2:])
    neg, pos = lm.label_ids(fmt.words, fmt.tail)
    want = np.array([direct_logodds(model, prefix + q, neg, pos) for q in queries])
    got = lm.label_logodds(prefix, queries, fmt.words, context=fmt.tail)
    np.testing.assert_allclose(got, want, atol=1e-3)
    assert got[0] < 0 < got[1]  # 'Never again.' negative, 'come back any time' positive
    # A block's ids are the same wherever it sits: the joined string would tokenise differently.
    assert pt.demos([texts[0]], [0])[0] == demos[0]
    joined = tok(fmt.demo(texts[0], 0) + fmt.query(texts[2]), add_special_tokens=False)["input_ids"]
    assert joined != demos[0] + queries[0]  # why prompts are built from blocks


def test_a_query_never_sees_its_own_weak_label(tiny_llama_dir):
    refiner = Refiner(LocalLM(str(tiny_llama_dir), "cpu", "fp32", batch_size=8), TINY_FORMAT)
    ex = sentiment_examples(9, seed=1)
    texts = [e.text for e in ex]
    weak = np.array([e.label for e in ex])
    batches = [np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([6, 7, 8])]
    before = refiner.loo(texts, weak, batches, None)
    flipped = weak.copy()
    flipped[4] = 1 - flipped[4]
    after = refiner.loo(texts, flipped, batches, None)
    assert after[4] == pytest.approx(before[4], abs=1e-6)  # its own label is not in its prompt
    assert abs(after[3] - before[3]) > 1e-5 and abs(after[5] - before[5]) > 1e-5  # batch-mates see it
    np.testing.assert_allclose(after[[0, 1, 2, 6, 7, 8]], before[[0, 1, 2, 6, 7, 8]], atol=1e-6)


def test_loo_batches_cover_every_example_once_and_balance_classes():
    rng = np.random.default_rng(0)
    hard = np.array([1] * 70 + [0] * 33)
    for k in (1, 4, 8):
        for balance in (False, True):
            batches = loo_batches(hard, k, balance, np.random.default_rng(k))
            flat = np.concatenate(batches)
            assert sorted(flat.tolist()) == list(range(len(hard)))
            assert min(len(b) for b in batches) >= k + 1 and max(len(b) for b in batches) <= k + 2
    batches = loo_batches(hard, 3, True, rng)
    # while both classes last (33 of the minority: about 16 batches of 4-5), a batch's classes
    # differ by at most one; unbalanced, some batches are far more lopsided
    assert all(abs(2 * hard[b].sum() - len(b)) <= 1 for b in batches[:15])
    plain = loo_batches(hard, 3, False, np.random.default_rng(0))
    assert max(abs(2 * hard[b].sum() - len(b)) for b in plain) >= 3


def test_demonstrations_come_from_the_pool_and_balance_when_asked():
    hard = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    pool = np.arange(2, 10)
    for seed in range(5):
        d = pick_demos(pool, hard, 4, True, np.random.default_rng(seed))
        assert len(set(d)) == 4 and set(d) <= set(pool) and hard[d].sum() == 2
    d = pick_demos(np.array([4, 5, 6, 7, 0]), hard, 4, True, np.random.default_rng(0))
    assert sorted(d.tolist()) == sorted(d.tolist()) and hard[d].sum() == 3  # one 0 in the pool
    with pytest.raises(W2SError, match="k=20 demonstrations but only 8"):
        pick_demos(pool, hard, 20, False, np.random.default_rng(0))


def test_prior_calibration_matches_the_weak_share():
    lo = np.random.default_rng(0).normal(2.0, 1.0, size=1000)  # an LM leaning to 'positive'
    assert (calibrated(lo, 0.5, "none") > 0.5).mean() > 0.95
    assert (calibrated(lo, 0.3, "prior") > 0.5).mean() == pytest.approx(0.3, abs=0.002)
    assert np.all(np.diff(calibrated(np.sort(lo), 0.5, "prior")) >= 0)  # order is kept


def test_prompt_format_errors():
    with pytest.raises(W2SError, match="must contain {text} and end with {label}"):
        PromptFormat(template="{label}: {text}")
    with pytest.raises(W2SError, match="two different words"):
        PromptFormat(words=("yes", "yes"))
    assert PromptFormat().query("x") == "Input: x\nAnswer:"
    assert PromptFormat().demo("x", 1) == "Input: x\nAnswer: yes\n\n"


def test_pipeline_runs_icl_refine_and_reports_labels_and_baselines(tmp_path, tiny_bert_dir, tiny_llama_dir):
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(240)))
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_llama_dir}",
              "splits.weak_train=60", "splits.transfer=60", "splits.test=80", "train.epochs=2",
              "eval.bootstrap=50", "features.precision=fp32", "features.max_length=32", "device=cpu",
              f"store={tmp_path / 'store'}", "method.name=icl_refine", "method.k=2",
              "method.words=[bad, good]", "method.template={text}\n{label}\n",
              "method.eval_size=40", "method.precision=fp32"]
    out = pipeline.run(load_config(None, common), quiet=True)
    m = out["metrics"]["method"]
    assert m["name"] == "icl_refine" and m["k"] == 2 and not m["cached"]
    assert 0 <= m["refined_label_accuracy"] <= 1 and m["prompts_per_second"] > 0
    assert m["flips"] == round((1 - m["refined_agrees_with_weak"]) * 60)
    p = m["prompting"]
    assert p["n"] == 40 and p["demonstrations"] == 2
    for name in ("zero_shot", "fewshot_ground_truth", "fewshot_weak", "student"):
        est, lo, hi = p[name]
        assert lo <= est <= hi
    assert isinstance(p["student_worse_than_unaltered"], bool)
    again = pipeline.run(load_config(None, common), quiet=True)
    assert again["metrics"]["method"]["cached"]
    assert again["metrics"]["student_accuracy"] == out["metrics"]["student_accuracy"]

    store = Store(tmp_path / "store")
    for k in (0, 1):  # the k curve needs three values of k on one task and batching
        pipeline.run(load_config(None, [*common, f"method.k={k}", "method.eval_size=0"]), quiet=True)
    runs = latest_done(store)
    table = refinement_markdown(runs)
    rows = table.splitlines()[2:]
    assert len(rows) == 1  # runs without prompting baselines (eval_size=0) make no row
    assert "toy.csv | icl_refine(" in rows[0] and "{text}\\n{label}" in rows[0]
    assert rows[0].endswith(" of 1 (n=40) |") and rows[0].count("|") == 12
    cells = [c.strip() for c in rows[0].split("|")]
    gain = float(cells[6].split(";")[0])  # refined - weak, from the recorded flips
    assert gain == pytest.approx(float(cells[5]) - float(cells[4]), abs=0.0015)
    png = plot_refinement_k(runs, tmp_path / "k.png")
    assert png is not None and png.stat().st_size > 5_000

    with pytest.raises(W2SError, match="is an encoder and method.lm is not set; set method.lm="):
        pipeline.run(load_config(None, [*common, f"strong_model={tiny_bert_dir}"]), quiet=True)
    with pytest.raises(W2SError, match="method.batch must be one of 'loo', 'fixed'"):
        pipeline.run(load_config(None, [*common, "method.batch=random"]), quiet=True)


def test_true_demonstrations_show_ground_truth_on_the_same_examples(tmp_path, tiny_bert_dir,
                                                                   tiny_llama_dir, monkeypatch):
    """`demos: true` (the oracle control) prompts with the very demonstration examples that
    `demos: weak` draws, shown with their ground-truth labels instead of their weak ones; the
    default adds nothing to a run's identity, and k=0 with true demonstrations is refused."""
    examples = sentiment_examples(240)
    truth = {e.text: e.label for e in examples}
    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in examples))
    shown: dict[str, list[tuple[list[str], list[int]]]] = {}
    current: list[str] = []

    def record(self, demo_texts, demo_labels, query_texts, progress):
        shown.setdefault(current[0], []).append((list(demo_texts), [int(y) for y in demo_labels]))
        return np.zeros(len(query_texts))

    monkeypatch.setattr(Refiner, "shared", record)
    common = [f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_llama_dir}",
              "splits.weak_train=40", "splits.transfer=60", "splits.test=80", "train.epochs=1",
              "eval.bootstrap=20", "features.precision=fp32", "features.max_length=32", "device=cpu",
              "method.name=icl_refine", "method.k=4", "method.batch=fixed", "method.chunk=20",
              "method.balance=true", "method.words=[bad, good]", "method.template={text}\n{label}\n",
              "method.eval_size=0", "method.precision=fp32"]
    weak_accuracy = []
    for demos in ("weak", "true"):
        current[:] = [demos]
        out = pipeline.run(load_config(None, [*common, f"method.demos={demos}",
                                              f"store={tmp_path / demos}"]), quiet=True)
        assert out["metrics"]["method"]["demos"] == demos
        weak_accuracy.append(out["metrics"]["method"]["weak_label_accuracy"])
    assert len(shown["weak"]) == len(shown["true"]) == 3  # 60 queries in chunks of 20
    differ = 0
    for (wt, wy), (tt, ty) in zip(shown["weak"], shown["true"]):
        assert wt == tt and len(tt) == 4  # the same demonstrations, drawn from the weak labels
        assert ty == [truth[t] for t in tt]  # shown with their ground truth
        differ += sum(a != b for a, b in zip(wy, ty))
    assert weak_accuracy[0] == weak_accuracy[1] < 1 and differ > 0  # the weak ones were wrong somewhere

    base = load_config(None, common)
    assert load_config(None, [*common, "method.demos=weak"]).hash() == base.hash()
    assert "demos" not in base.identity()["method"]["options"]
    assert load_config(None, [*common, "method.demos=true"]).hash() != base.hash()
    with pytest.raises(W2SError, match="method.demos=true shows ground-truth labels .* set method.k to 1"):
        pipeline.run(load_config(None, [*common, "method.k=0", "method.demos=true",
                                        f"store={tmp_path / 'k0'}"]), quiet=True)
