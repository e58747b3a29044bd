"""`python -m sslnb bench --params FILE`: how fast one training step runs, and why.

Measures, in one process on one device, for the run's model, batch and precision:
- images/s with resident, already-augmented tensors (the model's own speed), and with the real
  step: uint8 images resident on the device, batched augmentation, the training step;
- a step-time breakdown (data, augmentation, forward, backward, optimizer) of the same step
  synchronised at each phase's end (so slower than the timed passes, which do not synchronise);
- peak memory, analytic training FLOPs per image (sslnb/flops.py) and model-FLOP utilisation two
  ways: against this device's matmul peak measured in the same run, and against the GPU's
  datasheet peak (dense bf16; `SPEC_TFLOPS`);
- with train.compile, the graphs compiled and graph breaks, and whether a timed step recompiled.
One model, optimiser and compiled forward serve every pass. Writes
logs/bench/step_<run>_<device>_<date>.json. Without --params on a CPU, runs the CPU benchmarks in
bench/ instead.
"""
from __future__ import annotations

import datetime
import itertools
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from . import encoders, methods, optim
from .device import device_name, peak_memory_mb, resolve_device, resolve_precision
from .errors import ParamsError
from .optim import scaled_lr
from .params import resolve
from .randomness import step_generator
from .train import TrainStep, augments_of

ROOT = Path(__file__).resolve().parents[1]

# Dense bf16 tensor-core TFLOP/s from NVIDIA's datasheets (the sparse figure halved); fp16 for
# the T4, which has no bf16. The first name found in the device's name wins.
SPEC_TFLOPS = (("H200 NVL", 835.5), ("H200", 989.4), ("H100 PCIe", 756.5), ("H100 NVL", 835.5),
               ("H100", 989.4), ("A100", 312.0), ("L4", 121.0), ("T4", 65.0))


def spec_peak_tflops(name: str, dtype: torch.dtype | None) -> float | None:
    """The datasheet's dense half-precision peak of a GPU by name; None for fp32 runs, CPUs and
    GPUs not listed."""
    if dtype not in (torch.bfloat16, torch.float16):
        return None
    for key, tflops in SPEC_TFLOPS:
        if re.search(rf"\b{re.escape(key)}\b", name):
            return tflops
    return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype | None) -> float:
    """Measured dense matmul throughput: the denominator of utilisation."""
    n = 8192 if device.type == "cuda" else 1024
    dt = dtype or torch.float32
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 50 if device.type == "cuda" else 5
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t) / 1e12


def compile_counts() -> dict:
    """Graphs compiled and graph breaks so far in this process (torch._dynamo's counters)."""
    from torch._dynamo.utils import counters  # deferred: loads the compiler stack
    return {"graphs": counters["stats"]["unique_graphs"],
            "graph_breaks": sum(counters["graph_break"].values())}


def _setup(p: dict, device: torch.device):
    """The run's model and optimiser as pretraining builds them (one process, no accumulation,
    so the effective batch is batch_size)."""
    t = p["train"]
    torch.manual_seed(p["seed"])
    net = methods.get(p).prepare(methods.build_model(p), p).to(device)
    opt = optim.for_run(net, p, scaled_lr(t["base_lr"], t["batch_size"]),
                        methods.get(p).lr_scales(p))
    return net, opt


def _timed(fn, steps: int, warmup: int, device: torch.device) -> tuple[float, bool]:
    """(seconds per step, whether a timed step compiled a new graph)."""
    for _ in range(warmup):
        fn()
    sync(device)
    graphs = compile_counts()["graphs"]
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t) / steps, compile_counts()["graphs"] != graphs


def run(p: dict, steps: int = 20, warmup: int = 5, peak_tflops: float | None = None) -> dict:
    """The measurements above; `peak_tflops` reuses a matmul peak measured earlier on this
    device (the GPU check measures it once)."""
    device = resolve_device(p["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if p["train"]["compile"]:
        from torch import _dynamo  # deferred: loads the compiler stack
        _dynamo.reset()  # this configuration's compiles counted alone
        _dynamo.utils.counters.clear()
    amp_dtype, use_scaler = resolve_precision(p["precision"], device)
    t, size = p["train"], encoders.spec(p).image_size
    bs = t["batch_size"]
    p = {**p, "train": {**t, "accum_steps": 1}}
    augments = augments_of(methods.get(p), p)
    g = torch.Generator(device=device).manual_seed(0)
    pool = torch.randint(0, 256, (bs * 2, 3, size, size), dtype=torch.uint8, device=device,
                         generator=g)
    # pre-augmented floats, one per kind of view: the step without augmentation
    ready = [(lambda x, g, r=a(pool[:bs], step_generator(0, 0, 0, device)): r) for a in augments]

    def uint8_batches():
        for k in itertools.cycle((0, 1)):
            yield pool[k * bs:(k + 1) * bs]

    # One model, optimiser and (with train.compile) compiled forward for every pass: a second
    # compile would cost minutes on a ViT-B and measure nothing new.
    net, opt = _setup(p, device)
    net.train()
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    step = TrainStep(net, opt, scaler, p, device, amp_dtype, 10 ** 9, augments=augments)
    counter = itertools.count()
    batches = uint8_batches()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    results, recompiled = {}, {}
    for name, aug in (("resident_tensors", ready), ("with_augmentation", augments)):
        step.augments = aug
        seconds, recompiled[name] = _timed(lambda: step(batches, next(counter)), steps, warmup,
                                           device)
        results[name] = bs / seconds
    peak = peak_memory_mb(device)
    breakdown = _breakdown(step, batches, counter, device, max(3, steps // 4))
    flops = methods.train_flops_per_image(p)
    measured = peak_tflops or matmul_peak_tflops(device, amp_dtype)
    spec = spec_peak_tflops(device_name(device), amp_dtype)
    ips = results["with_augmentation"]
    achieved = ips * flops / 1e12
    out = {
        "benchmark": "train_step", "run": p["name"], "method": p["method"],
        "encoder": encoders.spec(p).name, "image_size": size, "batch_size": bs,
        "device": device_name(device), "precision": str(amp_dtype or "fp32"),
        "compile": t["compile"], "torch": torch.__version__,
        "images_per_s": {k: round(v, 1) for k, v in results.items()},
        "augmented_vs_resident": round(ips / results["resident_tensors"], 3),
        "step_ms": breakdown,
        "augmentation_share": round(breakdown["augmentation"] / breakdown["total"], 3),
        "peak_mem_mb": round(peak, 1) if peak is not None else None,
        "train_gflops_per_image": round(flops / 1e9, 3),
        "matmul_peak_tflops": round(measured, 2),
        "spec_peak_tflops": spec,
        "achieved_tflops": round(achieved, 3),
        "mfu": round(achieved / measured, 4),  # against the measured peak
        "mfu_spec": round(achieved / spec, 4) if spec else None,  # against the datasheet's
        "date": datetime.date.today().isoformat(),
    }
    if t["compile"]:
        out["compiled"] = {**compile_counts(), "recompiled_while_timed": recompiled}
    return out


class Phases:
    """Seconds per phase of a step, the device synchronised at each phase's end."""

    def __init__(self, device: torch.device):
        self.device, self.seconds = device, {}
        self.start()

    def start(self) -> None:
        sync(self.device)
        self.last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        sync(self.device)
        now = time.perf_counter()
        self.seconds[phase] = self.seconds.get(phase, 0.0) + now - self.last
        self.last = now


def _breakdown(step: TrainStep, batches, counter, device, steps: int) -> dict:
    """Milliseconds per phase of the real step (TrainStep marks its phases), after one step
    that warms up; slower than the timed passes, which never synchronise."""
    step(batches, next(counter))
    phases = Phases(device)
    for _ in range(steps):
        phases.start()
        step(batches, next(counter), mark=phases)
    out = {k: round(v / steps * 1000, 3) for k, v in phases.seconds.items()}
    out["total"] = round(sum(out.values()), 3)
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def write(result: dict, out_dir: Path = ROOT / "logs" / "bench") -> Path:
    kind = "cpu" if result["device"].startswith("CPU") else slug(result["device"])
    path = out_dir / f"step_{result['run']}_{kind}_{result['date']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main(params: str | None, overrides: list[str], steps: int, warmup: int,
         out_dir: str | None) -> list[Path]:
    if params is None:
        if torch.cuda.is_available():
            raise ParamsError("bench on a GPU needs --params, e.g. --params "
                              "params/imagenet100/mae_vit_b.yaml (or run bench/gpu_check.py).")
        scripts = ["augment_throughput.py", "loop_overhead.py", "data_throughput.py"]
        for s in scripts:
            print(f"[bench] {s}", flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / s)], check=True, cwd=ROOT)
        return sorted((ROOT / "logs" / "bench").glob("*.json"))
    result = run(resolve(params, overrides), steps, warmup)
    path = write(result, Path(out_dir) if out_dir else ROOT / "logs" / "bench")
    print(json.dumps(result, indent=2))
    return [path]
