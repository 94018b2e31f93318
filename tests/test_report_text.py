"""What `w2s run` / `w2s report` print: tables within 100 columns with short labels, a verdict in
plain words under each result, a suite's variant names, and no `plot: None`."""
from __future__ import annotations

import pytest
from test_report import add_run, synthetic_predictions

from w2sgen.cli import main
from w2sgen.report import median_pgr_table, median_pgr_verdict, pgr_verdict, table
from w2sgen.store import Store
from w2sgen.validate import build_config


def est(value, low, high):
    return {"value": value, "low": low, "high": high}


@pytest.mark.parametrize("pgr,gap,words", [
    (est(0.09, -0.27, 0.34), est(0.10, 0.05, 0.15), "no reliable gain: its interval includes 0"),
    (est(0.40, 0.20, 0.60), est(0.10, 0.05, 0.15), "a reliable gain: its interval lies above 0"),
    (est(-0.4, -0.6, -0.2), est(0.10, 0.05, 0.15), "a reliable loss: its interval lies below 0"),
    (est(1.3, 1.1, 1.5), est(0.10, 0.05, 0.15), "the student beats the ceiling"),
    (est(None, None, None), est(0.012, -0.01, 0.03),
     "PGR undefined: the ceiling is above the weak supervisor by +0.012, but the gap's interval "
     "[-0.010, +0.030] includes 0"),
    (est(None, None, None), est(-0.02, -0.05, 0.01), "the ceiling is below the weak supervisor by -0.020"),
    (est(None, None, None), est(-0.2, -0.3, -0.1),
     "PGR undefined: the weak supervisor beats the ceiling (gap -0.200 [-0.300, -0.100], below 0)"),
])
def test_pgr_verdicts(pgr, gap, words):
    assert words in pgr_verdict(pgr, gap, "its interval")


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "store")
    y, weak, student, ceiling = synthetic_predictions(0, 0)
    folder = "/home/someone/models/checkpoints/a-rather-long-model-folder-name-v2"
    add_run(store, "sciq", 0, {"weak_model": folder, "strong_model": folder + "-large"},
            y, weak, student, ceiling)
    add_run(store, "sciq", 0, {"loss": "logconf", "labels": {"methods": "strong_logconf"}},
            y, weak, ceiling.copy(), ceiling)
    return store


def test_run_table_fits_100_columns_with_short_labels_and_verdicts(store):
    text = table(store.runs("done"))
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100, text
    assert "/home/someone" not in text
    assert ("run 1: sciq [a-rather-long-model-folder-name-v2->a-rather-long-model-folder-name-v2-large,"
            " probe, naive, seed 0]") in " ".join(line.strip() for line in lines)
    # the suite's variant name, not `naive + logconf`; the student equal to the ceiling: PGR 1
    assert "run 2: sciq [minilm-l6->mpnet-base, probe, strong_logconf, seed 0]" in lines
    assert "xent" not in text and "naive + logconf" not in text
    m1, m2 = (r["metrics"] for r in store.runs("done"))
    assert lines[lines.index("run 2: sciq [minilm-l6->mpnet-base, probe, strong_logconf, seed 0]") + 1] \
        == "  " + pgr_verdict(m2["pgr_accuracy"], m2["gap_accuracy"], "its interval")
    assert m2["pgr_accuracy"]["value"] == 1.0
    row = lines[2].split()
    assert row[0] == "1" and row[1] == f"{m1['weak_accuracy']['value']:.3f}"


def test_median_table_keeps_variant_names_and_says_what_it_means(store):
    rows = median_pgr_table(store, rounds=200)
    assert sorted(r["method_label"] for r in rows) == ["naive", "strong_logconf"]
    assert sorted(r["method"] for r in rows) == ["naive", "naive + logconf"]  # the logic's key
    verdict = median_pgr_verdict(rows)
    assert verdict.startswith("reading: ") and "of 2 rows gain reliably" in verdict


def test_undefined_rows_say_which_way_their_gap_points():
    """The one rule: a row without a real gap has no PGR, and the reading says whether the
    ceiling is below the weak supervisor or the gap's interval holds 0."""
    from w2sgen.metrics import gap_words
    from w2sgen.report.text import _pgr_value

    rows = [{"gap": True, "low": 0.1, "high": 0.5},
            {"gap": False, "low": float("nan"), "high": float("nan"),
             "gap_text": gap_words(-0.187, -0.263, -0.108)},
            {"gap": False, "low": float("nan"), "high": float("nan"),
             "gap_text": gap_words(0.02, -0.01, 0.05)}]
    verdict = median_pgr_verdict(rows)
    assert "1 of 3 rows gain reliably" in verdict
    assert "1 have the ceiling below the weak supervisor (PGR undefined)" in verdict
    assert "1 have no clear ceiling-weak gap, its interval holding 0 (PGR undefined)" in verdict
    run = {"metrics": {"pgr_accuracy": {"value": None, "low": None, "high": None},
                       "gap_accuracy": {"value": -0.187, "low": -0.263, "high": -0.108}}}
    assert _pgr_value(run) == "undefined (strong below weak)"
    run["metrics"]["gap_accuracy"] = {"value": 0.02, "low": -0.01, "high": 0.05}
    assert _pgr_value(run) == "undefined (no clear gap)"


def test_labels_stay_out_of_the_identity():
    base = {"task": "sciq", "loss": "logconf"}
    plain, named = build_config(base), build_config({**base, "labels": {"methods": "x"}})
    assert plain.hash() == named.hash() and "labels" not in plain.to_dict()
    assert named.to_dict()["labels"] == {"methods": "x"}


def test_suite_cells_carry_their_variant_names(tmp_path, tiny_bert_dir):
    from conftest import sentiment_examples

    from w2sgen.sweep.suite import expand

    data = tmp_path / "toy.csv"
    data.write_text("text,label\n" + "".join(f"{e.text},{e.label}\n" for e in sentiment_examples(40)))
    base = {"task": str(data), "weak_model": str(tiny_bert_dir), "strong_model": str(tiny_bert_dir),
            "device": "cpu", "features": {"max_length": 64}}  # within the tiny model's positions
    cells, _ = expand("s", base, {"methods": ["naive", {"name": "strong_logconf", "loss": "logconf"}]},
                      str(tmp_path / "store"), "suite.yaml")
    assert [c.cfg.labels for c in cells] == [{"suite": "s", "methods": "naive"},
                                             {"suite": "s", "methods": "strong_logconf"}]
    assert cells[1].hash == build_config({**base, "loss": "logconf"}).hash()


def test_report_says_why_a_plot_is_missing(store, tmp_path, capsys):
    assert main(["report", "--store", str(store.root), "--refinement", "--methods",
                 "--out", str(tmp_path / "r.png")]) == 0
    said = capsys.readouterr().out
    assert "plot: None" not in said
    assert "plot: none (refined-label accuracy against k needs icl_refine runs at 3 or more" in said
    assert (tmp_path / "r.png").is_file() and (tmp_path / "r.svg").is_file()


def test_w2s_run_prints_capability_a_narrow_table_a_verdict_and_both_figure_formats(tmp_path, tiny_bert_dir):
    from conftest import sentiment_examples
    from test_cli import w2s

    data = tmp_path / "toy.csv"
    data.write_text("id,text,label\n" + "".join(f"{e.id},{e.text},{e.label}\n" for e in sentiment_examples(120)))
    p = w2s("run", f"task={data}", f"weak_model={tiny_bert_dir}", f"strong_model={tiny_bert_dir}",
            "splits.weak_train=0.3", "splits.transfer=0.3", "splits.test=0.4", "features.max_length=64",
            "eval.bootstrap=50", "device=cpu", f"--store={tmp_path / 'store'}")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    machine = lines[1]
    assert machine.startswith("  cpu ") and "threads" in machine and "precision auto = " in machine
    assert "GFLOP" not in p.stdout  # a timing varies with the load; `w2s doctor` measures
    table_start = next(i for i, line in enumerate(lines) if line.startswith("run  weak"))
    table = lines[table_start:lines.index(next(x for x in lines if x.startswith("weak labels' accuracy")))]
    assert max(map(len, table)) <= 100
    assert f"run 1: toy.csv [{tiny_bert_dir.name}->{tiny_bert_dir.name}, probe, naive, seed 0]" in table
    verdict = table[table.index(f"run 1: toy.csv [{tiny_bert_dir.name}->{tiny_bert_dir.name}, probe, "
                                "naive, seed 0]") + 1]
    assert verdict.startswith(("  no reliable gain", "  a reliable", "  PGR ", "  the student beats"))
    art = tmp_path / "store" / "artifacts" / "1"
    assert f"plots: {art / 'results.png'}, {art / 'curves.png'}" in p.stdout
    for name in ("results", "curves"):
        assert (art / f"{name}.png").stat().st_size > 5000
        assert (art / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def test_markdown_tables_are_printed_in_100_columns():
    from w2sgen.report import for_terminal
    from w2sgen.report.text import fit_table, markdown_table

    header = ["task", "model pair", "method", "seeds", "median student acc.", "median PGR [95% CI]"]
    row = ["nyt_sentiment", "minilm-l3 -> qwen2.5-coder-0.5b-instruct (probe)",
           "icl_refine_qwen15b_k4", "3", "0.519", "undefined (no clear gap: gap -0.025 [-0.125, "
           "+0.075] holds 0)"]
    md = markdown_table(header, [row, ["rt_sentiment", "a | b", "naive", "3", "0.790", "0.44"]])
    assert max(map(len, md.splitlines())) > 150
    lines = for_terminal("heading\n" + md + "\nreading: " + "word " * 40).splitlines()
    assert max(map(len, lines)) <= 100 and lines[0] == "heading"
    rule = next(i for i, line in enumerate(lines) if set(line) <= {"-", " "})
    # headers wrap before data cells do: every header word is there, the short cells stay whole
    assert " ".join(lines[1:rule]).count("median") == 2
    first = lines[rule + 1].split()
    assert first[0] == "nyt_sentiment" and "icl_refine_qwen15b_k4" in first and "0.519" in first
    assert "a | b" in lines[-4] and lines[-4].split()[-1] == "0.44"  # an escaped pipe is a pipe
    assert lines[-3].startswith("reading: ") and lines[-1].startswith("  word")
    # a table that fits is only aligned
    assert fit_table(["a", "bb"], [["1", "2"]]) == ["a  bb", "-  --", "1  2"]


def test_report_methods_table_fits_100_columns(store, tmp_path, capsys):
    assert main(["report", "--store", str(store.root), "--methods", "--out", str(tmp_path / "r.png")]) == 0
    said = capsys.readouterr().out
    assert max(map(len, said.splitlines())) <= 100, said
    assert "strong_logconf" in said and "/home/someone" not in said


def test_figures_name_methods_as_the_tables_do_and_wrap_long_pairs():
    from w2sgen.report.figures import _shown_name, _title

    rows = [{"method_family": "naive + logconf", "method_label": "logconf"},
            {"method_family": "naive + logconf", "method_label": "logconf"},
            {"method_family": "naive", "method_label": "naive"},
            {"method_family": "relabel", "method_label": "a"}, {"method_family": "relabel", "method_label": "b"}]
    assert _shown_name("naive + logconf", rows) == "logconf"  # the suite's name, as in the tables
    assert _shown_name("relabel", rows) == "relabel"  # two names for one family: the family
    pair = "qwen2.5-coder-0.5b-instruct -> qwen2.5-coder-1.5b-instruct (probe)"
    assert _title(pair).split("\n") == ["qwen2.5-coder-0.5b-instruct ->",
                                        "qwen2.5-coder-1.5b-instruct (probe)"]
    assert _title("minilm-l6 -> mpnet-base (probe)") == "minilm-l6 -> mpnet-base (probe)"
