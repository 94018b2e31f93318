"""`w2s generate` end to end on tiny in-memory models: every step runs, results land in the run
store, a rerun re-uses every cached step, a new method computes only what is new, and
`w2s report` shows generative runs next to classification ones."""
from __future__ import annotations

import json

from generative_fixtures import tiny_chat_dir, write_questions  # noqa: F401  (fixture)

from w2sgen import report
from w2sgen.cli import main
from w2sgen.generative import pipeline
from w2sgen.generative.config import load_config
from w2sgen.store import Store


def overrides(tmp_path, weak, strong, methods="[naive, icl_refine, infer_and_respond, ask_to_improve]"):
    q = write_questions(tmp_path / "q.jsonl", 14)
    task = f"task={{name: custom, questions: {q}, instruction: be happy, style: happy, markers: [happy, love]}}"
    return [task, f"weak.model={weak}", f"strong.model={strong}",
            f"judge.backend.model={weak}", "questions.train=8", "questions.eval=5",
            "generation.max_new_tokens=5", "finetune.epochs=2", "finetune.lr=0.03", "finetune.precision=fp32",
            f"methods={methods}",
            f"store={tmp_path / 'store'}", "device=cpu"]


def test_end_to_end_cached_and_reported(tmp_path, tiny_llama_dir, tiny_chat_dir, capsys):  # noqa: F811
    cfg = load_config(None, overrides(tmp_path, tiny_llama_dir, tiny_chat_dir))
    store = Store(cfg.store)
    first = pipeline.run(cfg, store, quiet=True)
    m = first["metrics"]
    assert m["kind"] == "generative" and m["n_train"] == 8 and m["n_eval"] == 5
    names = ["weak", "strong"] + [f"student:{x}" for x in ("naive", "icl_refine", "infer_and_respond", "ask_to_improve")]
    assert list(m["systems"]) == names
    for name, s in m["systems"].items():
        assert s["n"] == 5 and 0 <= s["marker_rate"][0] <= 1
        assert s["content_missing"] + s["content_unparsed_samples"] >= 0  # counted, never guessed
        assert ("vs_strong" in s) == name.startswith("student:")
    for name, info in m["methods"].items():
        assert info["sft_loss_after"] < info["sft_loss_before"], name
    assert len(m["methods"]["infer_and_respond"]["styles"]) == 2
    rows = [json.loads(x) for x in (store.root / "artifacts" / str(first["run_id"]) / "answers.jsonl").read_text().splitlines()]
    assert len(rows) == 6 * 5 and {r["system"] for r in rows} == set(names)

    again = pipeline.run(cfg, store, quiet=True)  # every expensive step is cached
    assert {k: v["cached"] for k, v in again["timings"].items() if k != "questions"} == \
        {k: True for k in again["timings"] if k != "questions"}
    assert again["metrics"]["systems"] == m["systems"]

    more = load_config(None, overrides(tmp_path, tiny_llama_dir, tiny_chat_dir,
                                       "{naive: {}, icl_refine: {batch_size: 3}}"))
    third = pipeline.run(more, store, quiet=True)
    fresh = {k for k, v in third["timings"].items() if not v["cached"]} - {"questions"}
    assert fresh and all("icl_refine" in k for k in fresh)  # only the changed method ran again

    runs = report.latest_done(store)
    text = report.table(runs)
    assert "student:icl_refine" in text and "the paper's bar" in text and "content - strong" in text
    assert report.plot(runs, tmp_path / "x.png") == tmp_path / "x.png"  # the generative plot
    assert (tmp_path / "x.png").stat().st_size > 1000
    assert report.median_pgr_table(store) == []
    capsys.readouterr()
    assert main(["report", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert f"run {third['run_id']}: custom" in out and "judge: " in out


def test_cli_generate(tmp_path, tiny_llama_dir, capsys):
    cfg = tmp_path / "gen.yaml"
    cfg.write_text("judge: {samples: 1}\n")
    args = ["generate", str(cfg), *overrides(tmp_path, tiny_llama_dir, tiny_llama_dir, "[naive]")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "w2s generate: custom" in out and "student:naive" in out and "answers in" in out
    assert main([*args, "questions.train=100"]) == 2
    assert "is more" in capsys.readouterr().err


def test_runs_over_seeds_pool_their_questions(tmp_path, tiny_llama_dir, tiny_chat_dir, capsys):  # noqa: F811
    """`w2s report` pools runs that differ only in their seeds: per run, each system's marker
    rate is that run's own; pooled, the mean over both runs' questions, and a student's paired
    difference against the unaltered strong model on the same questions. A run with another
    setting is not pooled with them."""
    import numpy as np

    from w2sgen.generative import report as gen_report

    keys = overrides(tmp_path, tiny_llama_dir, tiny_chat_dir, "[naive]")
    out = [pipeline.run(load_config(None, [*keys, f"seed={s}", f"questions.seed={s}"]), quiet=True)
           for s in (0, 1)]
    other = pipeline.run(load_config(None, [*keys, "generation.max_new_tokens=3"]), quiet=True)
    store = Store(tmp_path / "store")
    runs = report.latest_done(store)
    groups = gen_report.seed_groups(runs)
    assert [[r["id"] for r in g] for g in groups] == [[o["run_id"] for o in out]]
    assert other["run_id"] not in {r["id"] for g in groups for r in g}
    text = gen_report.pooled_text(store.root, runs)
    assert "pooled over 2 runs" in text and "seed/questions.seed 0/0, 1/1; 10 eval questions" in text
    marker = text.split("marker_rate, pooled")[1].split("reference_mention, pooled")[0]
    rows = {line.split()[0]: line.split() for line in marker.splitlines() if line.startswith(("weak", "strong", "student"))}
    for name in ("weak", "strong", "student:naive"):
        per_run = [o["metrics"]["systems"][name]["marker_rate"][0] for o in out]
        assert [float(v) for v in rows[name][1:3]] == [round(v, 2) for v in per_run]
        assert float(rows[name][3]) == round(float(np.mean(per_run)), 2)  # 5 questions each
    assert rows["student:naive"][-4].startswith(("+", "-"))  # paired with strong
    assert rows["student:naive"][-1] == rows["strong"][-1] == rows["strong"][-2] == "-"
    capsys.readouterr()
    assert main(["report", "--store", str(store.root)]) == 0
    assert "pooled over 2 runs" in capsys.readouterr().out
