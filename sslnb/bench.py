"""`python -m sslnb bench --params FILE`: how fast one training step runs, and why.

Measures, in one process on one device, for the run's model, batch and precision:
- images/s with resident, already-augmented tensors (the model's own speed), and with the real
  step: uint8 images resident on the device, batched augmentation, the training step;
- a step-time breakdown (data, augmentation, forward, backward, optimizer) from a separate pass
  that synchronises between phases (the timed passes do not);
- peak memory, analytic training FLOPs per image (sslnb/flops.py) and model-FLOP utilisation
  against this device's matmul peak, measured in the same run.
Writes logs/bench/step_<run>_<device>_<date>.json. Without --params on a CPU, runs the CPU
benchmarks in bench/ instead.
"""
from __future__ import annotations

import datetime
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import torch

from . import methods
from .device import device_name, peak_memory_mb, resolve_device, resolve_precision
from .optim import build_optimizer, scaled_lr
from .params import resolve
from .randomness import step_generator
from .train import TrainStep, augments_of, autocast

ROOT = Path(__file__).resolve().parents[1]


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


def _setup(p: dict, device: torch.device):
    """The run's model and optimiser as pretraining builds them (one process, no accumulation,
    so the effective batch is batch_size)."""
    t = p["train"]
    torch.manual_seed(p["seed"])
    net = methods.get(p).prepare(methods.build_model(p), p).to(device)
    opt = build_optimizer(net, t["optimizer"], scaled_lr(t["base_lr"], t["batch_size"]),
                          t["weight_decay"], t["betas"], t["momentum"])
    return net, opt


def _timed(fn, steps: int, warmup: int, device: torch.device) -> float:
    for _ in range(warmup):
        fn()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    sync(device)
    return (time.perf_counter() - t) / steps


def run(p: dict, steps: int = 20, warmup: int = 5) -> dict:
    device = resolve_device(p["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    amp_dtype, use_scaler = resolve_precision(p["precision"], device)
    t, size, bs = p["train"], p["data"]["image_size"], p["train"]["batch_size"]
    p = {**p, "train": {**t, "accum_steps": 1, "grad_clip": t["grad_clip"]}}
    augments = augments_of(methods.get(p), p)
    g = torch.Generator(device=device).manual_seed(0)
    pool = torch.randint(0, 256, (bs * 2, 3, size, size), dtype=torch.uint8, device=device,
                         generator=g)
    # pre-augmented floats, one per kind of view: the step without augmentation
    ready = [(lambda x, g, r=a(pool[:bs], step_generator(0, 0, 0, device)): r) for a in augments]

    def uint8_batches():
        k = 0
        while True:
            k = (k + 1) % 2
            yield pool[k * bs:(k + 1) * bs]

    def ready_batches():
        while True:
            yield pool[:bs]  # ignored: the views come pre-augmented

    results = {}
    for name, batches, aug in (("resident_tensors", ready_batches(), ready),
                               ("with_augmentation", uint8_batches(), augments)):
        net, opt = _setup(p, device)
        scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
        net.train()
        counter = iter(range(10 ** 9))
        step = TrainStep(net, opt, scaler, p, device, amp_dtype, 10 ** 9, augments=aug)

        def one():
            step(batches, next(counter))

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        results[name] = bs / _timed(one, steps, warmup, device)
        peak = peak_memory_mb(device)
    breakdown = _breakdown(p, device, amp_dtype, use_scaler, augments, uint8_batches(),
                           max(3, steps // 4))
    flops = methods.train_flops_per_image(p)
    peak_tflops = matmul_peak_tflops(device, amp_dtype)
    ips = results["with_augmentation"]
    return {
        "benchmark": "train_step", "run": p["name"], "method": p["method"],
        "encoder": p["model"]["encoder"], "image_size": size, "batch_size": bs,
        "device": device_name(device), "precision": str(amp_dtype or "fp32"),
        "compile": t["compile"], "torch": torch.__version__,
        "images_per_s": {k: round(v, 1) for k, v in results.items()},
        "augmented_vs_resident": round(ips / results["resident_tensors"], 3),
        "step_ms": breakdown,
        "augmentation_share": round(breakdown["augmentation"] / breakdown["total"], 3),
        "peak_mem_mb": round(peak, 1) if peak is not None else None,
        "train_gflops_per_image": round(flops / 1e9, 3),
        "matmul_peak_tflops": round(peak_tflops, 2),
        "achieved_tflops": round(ips * flops / 1e12, 3),
        "mfu": round(ips * flops / 1e12 / peak_tflops, 4),
        "date": datetime.date.today().isoformat(),
    }


def _breakdown(p, device, amp_dtype, use_scaler, augments, batches, steps: int) -> dict:
    """Milliseconds per phase, synchronising between phases (so slower than the timed runs)."""
    net, opt = _setup(p, device)
    forward = torch.compile(net) if p["train"]["compile"] else net
    method = methods.get(p)
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    net.train()
    phases = dict.fromkeys(("data", "augmentation", "forward", "backward", "optimizer"), 0.0)

    def mark(name, start):
        sync(device)
        now = time.perf_counter()
        phases[name] += now - start
        return now

    for i in range(steps + 1):
        if i == 1:
            phases = dict.fromkeys(phases, 0.0)  # the first step warms up
        t0 = time.perf_counter()
        x = next(batches)
        t0 = mark("data", t0)
        g = [step_generator(p["seed"], i, v, device) for v in range(method.generators(p))]
        batch_views = method.views(augments, x, g, p)
        t0 = mark("augmentation", t0)
        with autocast(device, amp_dtype):
            loss = method.loss(forward, batch_views, g)
        t0 = mark("forward", t0)
        scaler.scale(loss).backward()
        t0 = mark("backward", t0)
        method.before_step(net, opt, i, steps + 1, p)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        method.after_step(net, opt, i + 1, steps + 1, p)
        mark("optimizer", t0)
    out = {k: round(v / steps * 1000, 3) for k, v in phases.items()}
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
            from .errors import ParamsError
            raise ParamsError("bench on a GPU needs --params, e.g. --params "
                              "params/imagenet100/mae_vit_b.yaml (or run bench/gpu_check.sh).")
        scripts = ["augment_throughput.py", "loop_overhead.py", "data_throughput.py"]
        for s in scripts:
            print(f"[bench] {s}", flush=True)
            subprocess.run([sys.executable, str(ROOT / "bench" / s)], check=True, cwd=ROOT)
        return sorted((ROOT / "logs" / "bench").glob("*.json"))
    result = run(resolve(params, overrides), steps, warmup)
    path = write(result, Path(out_dir) if out_dir else ROOT / "logs" / "bench")
    print(json.dumps(result, indent=2))
    return [path]
