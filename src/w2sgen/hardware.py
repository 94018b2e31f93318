"""The machine a run computes on, measured: which precision is fast here, and how fast.

`precision: auto` (the default of every setting that chooses one) becomes bf16 where the device
computes bfloat16 natively - CUDA GPUs with bf16 support, CPUs with AVX512-BF16 or AMX - and fp32
everywhere else. On a CPU without bf16 units PyTorch emulates bfloat16, and a 1024 x 1024 product
ran at 0.4 GFLOP/s against 47 in fp32 on one such machine, so guessing wrong costs 100x.

That choice reads the device's capability only (CPU flags, CUDA's bf16 support), never a timing:
the resolved precision, never `auto`, is what cache keys, run identities and run records hold,
and a timing taken on a busy machine would make one config hash two ways. The matrix-product
benchmark (`probe`) is measured once per machine (device, CPU model and flags, torch version,
threads), cached in the data home as `hardware.json` when the machine is idle, and printed by
`w2s doctor`, which says when it disagrees with the capability (then set the precision).
A GPU's measurement (`w2s doctor` or benchmarks/gpu_check.py on a CUDA machine) is kept whatever
the CPU's load, with its memory; `gpu_figures` gives a GPU suite's estimate (`w2s sweep
--dry-run`) that measurement where hardware.json has it, else the card's data-sheet figures
(NOMINAL), and says which.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Literal, Optional

from .errors import W2SError
from .paths import home

PRECISIONS = ("auto", "bf16", "fp32", "fp16")
Precision = Literal["bf16", "fp32", "fp16"]  # a resolved precision (what `auto` becomes)
FORMAT = 1  # of hardware.json entries
BENCH_SECONDS = 0.15  # per dtype and size: long enough to be stable, short enough to be free


@dataclass
class Probe:
    """One device's measured facts."""

    device: str  # cpu | cuda
    name: str  # CPU model or GPU name
    capability: str  # torch's CPU capability (AVX2, AVX512, ...) or CUDA compute capability
    threads: int
    bf16_native: bool  # the hardware has bf16 units (AVX512-BF16/AMX; CUDA bf16 support)
    fp32_gflops: float
    bf16_gflops: float
    memory_bytes: Optional[int] = None  # GPU memory (None on the CPU)
    measured_at: Optional[float] = None  # when (Unix time); None for a card's nominal figures

    @property
    def bf16_fast(self) -> bool:
        return self.bf16_native and self.bf16_gflops > 1.2 * self.fp32_gflops

    @property
    def auto_precision(self) -> Precision:
        """What `auto` means here: from the capability, as `auto_precision(device)` says."""
        return "bf16" if self.bf16_native else "fp32"

    def capability_line(self) -> str:
        """One line without timings (what `w2s run` prints: the same on every run of a machine,
        where a measured GFLOP/s varies with the load; `w2s doctor` prints the measurement)."""
        units = "native bf16 units" if self.bf16_native else "bf16 emulated"
        return (f"{self.device} {self.name} ({self.capability}, {self.threads} threads, {units}); "
                f"precision auto = {self.auto_precision}")

    def summary(self) -> str:
        """One line: what computes, how fast, and what `auto` chose."""
        return (f"{self.device} {self.name} ({self.capability}, {self.threads} threads): "
                f"fp32 {self.fp32_gflops:.0f} GFLOP/s, bf16 {self.bf16_gflops:.1f} GFLOP/s"
                f"{'' if self.bf16_native else ' (emulated)'}; precision auto = {self.auto_precision}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bf16_native() -> bool:
    """bf16 units on this CPU: AVX512-BF16 or AMX (Linux flags), or oneDNN's own check."""
    import torch

    flags = _cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16"}:
        return True
    if flags:  # flags known and neither present: emulated, whatever else is claimed
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def matmul_gflops(dtype: Any, device: str, n: int = 1024, seconds: float = BENCH_SECONDS,
                  quick_if_slow: bool = True) -> float:
    """GFLOP/s of n x n products in `dtype`. A size-256 trial comes first, so an emulated bf16
    (0.4 GFLOP/s) costs ~0.1 s instead of seconds; with `quick_if_slow`, a slow trial of a
    half-precision type stops there."""
    import torch

    def rate(size: int, budget: float) -> float:
        gen = torch.Generator(device=device).manual_seed(0)  # never the caller's RNG stream
        a = torch.randn(size, size, device=device, generator=gen).to(dtype)
        b = torch.randn(size, size, device=device, generator=gen).to(dtype)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < budget / 3:  # warm-up: thread pool, kernels, allocation
            a @ b
            sync()
        t0, k = time.perf_counter(), 0
        while True:
            a @ b
            k += 1
            sync()
            elapsed = time.perf_counter() - t0
            if elapsed >= budget:
                return 2 * size ** 3 * k / elapsed / 1e9

    trial = rate(256, seconds / 3)
    if quick_if_slow and dtype != torch.float32 and trial < 20:  # a bigger size only costs seconds
        return trial
    return max(trial, rate(n, seconds))


def _key(device: str) -> str:
    import torch

    parts: list[Any] = [FORMAT, device, torch.__version__, torch.get_num_threads()]
    if device == "cuda":
        parts += [torch.cuda.get_device_name(0), torch.version.cuda]
    else:
        parts += [_cpu_name(), torch.backends.cpu.get_cpu_capability(), sorted(_cpu_flags())]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def measure(device: str) -> Probe:
    import torch

    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        native = bool(torch.cuda.is_bf16_supported())
        return Probe("cuda", props.name, f"sm_{props.major}{props.minor}", torch.get_num_threads(),
                     native, matmul_gflops(torch.float32, "cuda", 4096),
                     matmul_gflops(torch.bfloat16, "cuda", 4096) if native else 0.0,
                     int(props.total_memory))
    native = cpu_bf16_native()
    fp32 = matmul_gflops(torch.float32, "cpu")
    # With bf16 units, a slow first measurement is the kernels' first compilation or another
    # process's load, not emulation: measure at full size, twice, and keep the better.
    bf16 = matmul_gflops(torch.bfloat16, "cpu", quick_if_slow=not native)
    if native and bf16 < 1.2 * fp32:
        bf16 = max(bf16, matmul_gflops(torch.bfloat16, "cpu", seconds=3 * BENCH_SECONDS))
    return Probe("cpu", _cpu_name(), torch.backends.cpu.get_cpu_capability(),
                 torch.get_num_threads(), native, fp32, bf16)


_PROBES: dict[str, Probe] = {}


def _busy() -> bool:
    """Other processes keep the CPU busy: a matmul benchmark now would measure them too."""
    try:
        return os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    except OSError:
        return False


def probe(device: str = "cpu", refresh: bool = False) -> Probe:
    """This machine's facts for `device` (cpu | cuda), measured once and cached in the data home
    (`hardware.json`); `refresh` measures again."""
    device = "cuda" if device.startswith("cuda") else "cpu"
    if device in _PROBES and not refresh:
        return _PROBES[device]
    path = home() / "hardware.json"
    key = _key(device)
    try:
        cache = json.loads(path.read_text())
        if not isinstance(cache, dict):
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entry = cache.get(key)
    if isinstance(entry, dict) and not refresh:
        try:
            _PROBES[device] = Probe(**entry)
            return _PROBES[device]
        except TypeError:
            pass  # an entry of another shape: measure again
    busy = device == "cpu" and _busy()  # (a GPU's products do not compete with the CPU's load)
    result = measure(device)
    result.measured_at = round(time.time())
    _PROBES[device] = result
    if busy or (device == "cpu" and _busy()):  # other work competed for the cores: keep none
        return result
    cache[key] = asdict(result)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        tmp.write_text(json.dumps(cache, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # a read-only data home: measure again next time
    return result


# Data-sheet figures of common cards, dense (no sparsity), by a part of the name CUDA reports
# (the first that matches wins): bf16 tensor-core TFLOP/s, fp32 (non-tensor) TFLOP/s, GiB of
# memory. For a card's estimate on a machine without it, when no measurement was recorded.
NOMINAL = [("H200", 989.0, 67.0, 141), ("H100 PCIe", 756.0, 51.0, 80), ("H100 NVL", 835.0, 60.0, 94),
           ("H100", 989.0, 67.0, 80), ("A100", 312.0, 19.5, 80), ("L40S", 362.0, 91.6, 48),
           ("L4", 121.0, 30.3, 24), ("A10", 125.0, 31.2, 24)]


def nominal(card: str) -> Optional[Probe]:
    """A card's data-sheet figures as a Probe (measured_at None), or None for a card not in
    NOMINAL; `card` is the name CUDA reports (`NVIDIA H100 80GB HBM3`)."""
    for name, bf16, fp32, gib in NOMINAL:
        if name.lower() in card.lower():
            return Probe("cuda", card, "nominal", 0, True, fp32 * 1e3, bf16 * 1e3, gib * 2**30)
    return None


def recorded_gpus() -> list[Probe]:
    """The GPU measurements hardware.json holds (`w2s doctor` or benchmarks/gpu_check.py on a
    machine with a CUDA GPU, under this data home), the most recent first."""
    try:
        cache = json.loads((home() / "hardware.json").read_text())
    except (OSError, ValueError):
        return []
    found = []
    for entry in cache.values() if isinstance(cache, dict) else []:
        if isinstance(entry, dict) and entry.get("device") == "cuda":
            try:
                found.append(Probe(**entry))
            except TypeError:
                continue
    return sorted(found, key=lambda p: -(p.measured_at or 0))


def gpu_figures() -> tuple[Probe, str]:
    """The figures a GPU suite's estimate uses for this machine's GPU, and a line saying where
    they come from: its measurement recorded in hardware.json (`w2s doctor`,
    benchmarks/gpu_check.py); else its data-sheet peak (NOMINAL) and its memory; else, for a
    card without one, a measurement taken now. Nothing is measured where figures exist, so an
    estimate does not vary with what else runs on the GPU."""
    import torch

    name = torch.cuda.get_device_name(0)
    here = [p for p in ([_PROBES["cuda"]] if "cuda" in _PROBES else []) + recorded_gpus()
            if p.name == name and p.measured_at is not None]
    if here:
        when = time.strftime("%Y-%m-%d", time.gmtime(here[0].measured_at))
        return here[0], f"GPU {name}: measured on {when} (hardware.json)"
    sheet = nominal(name)
    if sheet is not None:
        sheet.memory_bytes = int(torch.cuda.get_device_properties(0).total_memory)
        return sheet, (f"GPU {name}: its nominal data-sheet peak, not a measurement (`w2s doctor` "
                       "or benchmarks/gpu_check.py measure and record it)")
    p = probe("cuda")
    return p, f"GPU {name}: measured now (hardware.json)"


_NATIVE: dict[str, bool] = {}


def ram_bytes() -> Optional[int]:
    """This machine's physical memory (None where the OS does not say); not cached, not timed.
    W2S_RAM_BYTES replaces it (a machine shared with other work, and tests)."""
    if os.environ.get("W2S_RAM_BYTES"):
        return int(os.environ["W2S_RAM_BYTES"])
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def bf16_native(device: str) -> bool:
    """Does `device` (cpu | cuda) compute bf16 natively? Read from the hardware's description
    (CPU flags, CUDA's bf16 support), never timed; asked once per process."""
    device = "cuda" if device.startswith("cuda") else "cpu"
    if device not in _NATIVE:
        if device == "cuda":
            import torch

            _NATIVE[device] = bool(torch.cuda.is_bf16_supported())
        else:
            _NATIVE[device] = cpu_bf16_native()
    return _NATIVE[device]


def auto_precision(device: str) -> Precision:
    """`precision: auto` on `device`: bf16 where it is native, else fp32. Nothing is measured,
    so a config resolves, and hashes, the same on a busy machine as on an idle one."""
    return "bf16" if bf16_native(device) else "fp32"


_WARNED: set[tuple[str, str]] = set()


def resolve_precision(requested: str, device: str, where: str = "precision") -> Precision:
    """The precision a setting means on `device`: `auto` -> `auto_precision(device)`; an
    explicit value is kept, with a one-line warning when bf16 is emulated here (it runs,
    slowly) and an error where it cannot run at all (fp16 on a CPU, bf16 on a GPU without it).
    Reads the capability only: nothing is timed (this runs inside every config hash)."""
    if requested not in PRECISIONS:
        raise W2SError(f"{where} must be one of {list(PRECISIONS)}, got {requested!r}")
    on_cuda = device.startswith("cuda")
    if requested == "fp16" and not on_cuda:
        raise W2SError(f"{where}=fp16 needs a CUDA GPU (CPUs have no fast fp16 matrix units); use "
                       f"{where}=auto (here: {auto_precision('cpu')}) or fp32")
    if requested == "fp32" or requested == "fp16":
        return "fp32" if requested == "fp32" else "fp16"
    if requested == "auto":
        return auto_precision(device)
    if not bf16_native(device):
        if on_cuda:
            raise W2SError(f"{where}=bf16 but this GPU has no bf16 support; use {where}=auto or fp16")
        if (where, device) not in _WARNED:
            _WARNED.add((where, device))
            print(f"warning: {where}=bf16 on a CPU without bf16 units: PyTorch emulates it, often "
                  f"100x slower than fp32 (w2s doctor measures it); {where}=auto picks fp32 here",
                  file=sys.stderr, flush=True)
    return "bf16"


def torch_dtype(precision: str) -> Any:
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]


def autocast(precision: str, device: Any) -> Any:
    """Autocast to a precision's dtype on `device` (a torch device or its name); fp32 is no
    autocast at all, and `auto` is resolved for the device first."""
    import torch

    dev = (device if isinstance(device, str) else device.type).split(":")[0]
    precision = resolve_precision(precision, dev)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=dev, dtype=torch_dtype(precision))


def header(device: str = "cpu") -> str:
    """The line benchmarks and `w2s doctor` start with."""
    import torch

    return f"machine: {probe(device).summary()}; torch {torch.__version__}"
