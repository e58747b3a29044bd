#!/usr/bin/env python3
"""The GPU check: what one short window on one H100/H200-class GPU must bring back.

    python3 bench/gpu_check.py --out DIR [--commit HASH]

Every item runs in a worker process under its own time limit (its budget); the whole runs under
a deadline (--deadline, default 540 s) that skips an item whose budget no longer fits, and says
so. Each finished item is appended at once, as one JSON line, to DIR/gpu_check_<time>.jsonl
(the first line: versions of torch, torchvision and timm, the GPU, the plan), and the log is
teed to DIR/gpu_check_<time>.log: two files however many configurations there are, and a
machine reclaimed midway keeps every item already finished.

Budgets on an H200 (estimates: the project has not yet run on a GPU):

    item                 what                                                        budget
    header               versions, GPU, plan (this process, before any worker)          0 s
    peak                 CUDA up; bf16 and TF32 matmul peaks, measured once             30 s
    sync                 one step of every params/demo/*.yaml under                     40 s
                         torch.cuda.set_sync_debug_mode("error")
    bench <config>       each params/imagenet100/*.yaml, eager: images/s resident and   30 s each
                         augmented, step breakdown, MFU against both peaks
    demo <run>           each params/demo/*.yaml pretrained and evaluated on the GPU,   35 s each
                         1 epoch of fine-tuning at depths 1, 2 and all
    compiled mae_vit_b   ViT-B/16 compiled: graphs, graph breaks, recompiles in the     90 s
                         timed steps (last: the largest unknown)

    Total today: 30 + 40 + 6 x 30 + 5 x 35 + 90 = 515 s, under the 540 s deadline.

A worker's start (importing torch and sslnb) counts against the first item it runs. A dry run of
the plumbing on a CPU (tiny sizes, nothing meaningful measured; the slow tests kill it midway):

    python3 bench/gpu_check.py --device cpu --out /tmp/gc --scale 20 --steps 2 \
        --set data.image_size=32 --set train.batch_size=8 \
        --demo-set train.epochs=1 --demo-set data.num_train=256 --demo-set eval.probe_epochs=2
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # sslnb importable without PYTHONPATH (workers inherit sys.path)
    sys.path.insert(0, str(ROOT))
BUDGET_S = {"peak": 30, "sync": 40, "bench": 30, "demo": 35, "compiled": 90}
DEADLINE_S = 540
COMPILED = "mae_vit_b"  # the configuration also timed compiled


@dataclass
class Item:
    name: str
    kind: str
    budget_s: float
    args: dict = field(default_factory=dict)


def plan(scale: float = 1.0) -> list[Item]:
    """Every item in running order; a new params/imagenet100 or params/demo file joins by itself
    (and the header's total must then be revised: tests/test_gpu_check.py compares)."""
    big = sorted(ROOT.glob("params/imagenet100/*.yaml"))
    demo = sorted(ROOT.glob("params/demo/*.yaml"))
    items = [Item("peak", "peak", BUDGET_S["peak"]), Item("sync", "sync", BUDGET_S["sync"],
                                                          {"params": [str(f) for f in demo]})]
    items += [Item(f"bench {f.stem}", "bench", BUDGET_S["bench"], {"params": str(f)})
              for f in big]
    items += [Item(f"demo {f.stem}", "demo", BUDGET_S["demo"], {"params": str(f)})
              for f in demo]
    items.append(Item(f"compiled {COMPILED}", "bench", BUDGET_S["compiled"],
                      {"params": str(ROOT / f"params/imagenet100/{COMPILED}.yaml"),
                       "compile": True}))
    for item in items:
        item.budget_s *= scale
    return items


# The driver (this process: no torch, so it starts at once and holds no GPU memory) ---------------

class Output:
    """The two files: results appended one whole line at a time and synced to disk, the log
    teed to stdout."""

    def __init__(self, out: Path):
        out.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        n = 0
        while True:  # never append to another check's files
            base = out / f"gpu_check_{stamp}{f'_{n}' if n else ''}"
            if not base.with_suffix(".jsonl").exists():
                break
            n += 1
        self.results, self.log_path = base.with_suffix(".jsonl"), base.with_suffix(".log")
        self.results.touch()

    def record(self, line: dict) -> None:
        """One write() of the whole line in append mode, synced: a kill leaves whole lines."""
        fd = os.open(self.results, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, (json.dumps(line) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def log(self, text: str) -> None:
        line = f"[gpu_check {time.strftime('%H:%M:%S')}] {text}"
        print(line, flush=True)
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


class Worker:
    """One worker process at a time: items run in it one by one (imports and CUDA set up
    once); an item past its budget or a crash ends it, and the next item starts a new one."""

    def __init__(self, log_path: Path, options: dict):
        self.log_path, self.options = log_path, options
        self.process = self.conn = None

    def run(self, item: Item) -> tuple[str, dict]:
        if self.process is None or not self.process.is_alive():
            ctx = mp.get_context("spawn")
            self.conn, child = ctx.Pipe()
            self.process = ctx.Process(target=worker_main, daemon=True,
                                       args=(child, str(self.log_path), self.options))
            self.process.start()
        self.conn.send(asdict(item))
        if self.conn.poll(item.budget_s):
            try:
                reply = self.conn.recv()
                return reply.pop("status"), reply
            except EOFError:
                self.process.join(5)
                return "crashed", {"exitcode": self.process.exitcode}
        self.stop()
        return "timeout", {"error": f"still running after its budget of {item.budget_s:.0f} s"}

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.process = None

    def close(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.conn.send(None)
            self.process.join(10)
        self.stop()


def versions() -> dict:
    out = {"python": platform.python_version(), "platform": platform.platform(),
           "cpu_count": os.cpu_count()}
    for pkg in ("torch", "torchvision", "timm", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def gpu_line() -> str | None:
    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,"
                               "power.limit", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def commit(given: str | None) -> str | None:
    """The commit checked: --commit (a copy of the tree without .git), else git's."""
    if given:
        return given
    try:
        r = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        out = Output(Path(a.out))
    except OSError as e:
        print(f"gpu_check: cannot write results to --out {a.out!r} ({e.strerror or e}); nothing "
              f"ran. Pass a writable folder, e.g. --out /tmp/gpu_check (on the lent GPU "
              f"machine: --out \"$OUT\").", file=sys.stderr)
        return 2
    items = plan(a.scale)
    deadline = a.deadline * a.scale
    start = time.monotonic()
    options = {"device": a.device, "steps": a.steps, "warmup": a.warmup, "set": a.set,
               "demo_set": a.demo_set, "ft_epochs": a.ft_epochs}
    out.record({"item": "header", "status": "ok", "gpu": gpu_line(), "commit": commit(a.commit),
                **versions(), "deadline_s": deadline,
                "options": options,
                "plan": [[i.name, i.budget_s] for i in items],
                "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    out.log(f"{len(items)} items, deadline {deadline:.0f} s; results in {out.results}")
    worker = Worker(out.log_path, options)
    shared: dict = {}  # what a later item takes from an earlier one (the matmul peak)
    try:
        for item in items:
            left = deadline - (time.monotonic() - start)
            if item.budget_s > left:
                out.record({"item": item.name, "status": "skipped", "budget_s": item.budget_s,
                            "reason": f"budget {item.budget_s:.0f} s > {left:.0f} s left"})
                out.log(f"skipped {item.name}: budget {item.budget_s:.0f} s > {left:.0f} s left")
                continue
            item.args.update(shared)
            out.log(f"start {item.name} (budget {item.budget_s:.0f} s)")
            t0 = time.monotonic()
            status, result = worker.run(item)
            seconds = round(time.monotonic() - t0, 1)
            out.record({"item": item.name, "status": status, "seconds": seconds,
                        "budget_s": item.budget_s, **result})
            out.log(f"done {item.name}: {status} in {seconds} s")
            if item.kind == "peak" and status == "ok":
                shared["peak_tflops"] = result["matmul_peak_tflops"]["training"]
    finally:
        worker.close()
    out.log(f"finished in {time.monotonic() - start:.0f} s: {out.results}")
    return 0


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "logs" / "bench"), help="the output folder")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--deadline", type=float, default=DEADLINE_S, help="seconds for all items")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every budget and the deadline (a CPU dry run)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps per bench pass")
    ap.add_argument("--warmup", type=int, default=5, help="warm-up steps per bench pass")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the bench and sync items")
    ap.add_argument("--demo-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the demo items")
    ap.add_argument("--ft-epochs", type=int, default=1, help="fine-tuning epochs per depth")
    ap.add_argument("--commit", help="the commit checked, where the tree has no .git "
                                     "(e.g. a copy on a lent GPU machine)")
    return ap.parse_args(argv)


# The worker (runs the items; imports torch and sslnb once) -------------------------------------
# Items import inside their functions: the driver above imports this file too and must not load
# torch (it would start slowly and hold GPU memory).

def worker_main(conn, log_path: str, options: dict) -> None:
    """Items from the pipe until None; output to the log; dies with the driver (Linux)."""
    try:
        import ctypes
        import signal
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    log = open(log_path, "a", buffering=1, encoding="utf-8")
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    os.environ["SSLNB_PROGRESS"] = "0"
    while True:
        try:
            item = conn.recv()
        except EOFError:
            return
        if item is None:
            return
        try:
            result = ITEMS[item["kind"]](item["args"], options)
            conn.send({"status": "ok", **result})
        except BaseException as e:  # noqa: BLE001 - reported as the item's result
            traceback.print_exc()
            conn.send({"status": "error", "error": f"{type(e).__name__}: {e}"[-2000:]})


def item_peak(args: dict, o: dict) -> dict:
    import torch
    from sslnb.bench import matmul_peak_tflops, spec_peak_tflops
    from sslnb.device import device_name, resolve_device, resolve_precision
    device = resolve_device(o["device"])  # TF32 on for fp32 matmuls, as every run has it
    dtype, _ = resolve_precision("auto", device)
    out = {"device": device_name(device),
           "matmul_peak_tflops": {"training": round(matmul_peak_tflops(device, dtype), 2),
                                  "fp32_matmuls": round(matmul_peak_tflops(device, None), 2)},
           "training_precision": str(dtype or "fp32"),
           "spec_peak_tflops": spec_peak_tflops(device_name(device), dtype),
           "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.type == "cuda":
        prop = torch.cuda.get_device_properties(device)
        out.update(capability=list(torch.cuda.get_device_capability(device)),
                   memory_gb=round(prop.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return out


def item_sync(args: dict, o: dict) -> dict:
    """One warm-up step (constants cached, cudnn tuned, optimizer state made), then two steps
    under sync debug mode "error": any host sync in them raises."""
    import torch
    from sslnb.bench import _setup
    from sslnb.device import resolve_device, resolve_precision
    from sslnb.params import resolve
    from sslnb.train import TrainStep
    device = resolve_device(o["device"])
    results = {}
    for path in args["params"]:
        p = resolve(path, [f"device={o['device']}", "train.batch_size=16", *o["set"]])
        dtype, scaler_on = resolve_precision(p["precision"], device)
        net, opt = _setup(p, device)
        scaler = torch.amp.GradScaler(device.type, enabled=scaler_on)
        size = p["data"]["image_size"]
        x = torch.randint(0, 256, (16, 3, size, size), dtype=torch.uint8, device=device)
        step = TrainStep(net.train(), opt, scaler, p, device, dtype, 100)
        batches = iter([x] * 3)
        step(batches, 0)
        try:
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.set_sync_debug_mode("error")
            for k in (1, 2):
                step(batches, k)
            results[Path(path).stem] = {"method": p["method"], "host_syncs": "none" if
                                        device.type == "cuda" else "not checked on a CPU"}
        except RuntimeError as e:
            results[Path(path).stem] = {"method": p["method"], "host_syncs": str(e)[:500]}
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode(0)
        del net, opt, step
    return {"runs": results, "methods_checked": sorted({r["method"] for r in results.values()}),
            "all_clean": all(r["host_syncs"] in ("none", "not checked on a CPU")
                             for r in results.values())}


def item_bench(args: dict, o: dict) -> dict:
    from sslnb.bench import run
    from sslnb.params import resolve
    over = [f"device={o['device']}", *o["set"]]
    if args.get("compile"):
        over += ["train.compile=true", f"name={Path(args['params']).stem}_compiled"]
    return run(resolve(args["params"], over), o["steps"], o["warmup"], args.get("peak_tflops"))


def item_demo(args: dict, o: dict) -> dict:
    """The demo run as a report trains and evaluates it, on the GPU, in a folder of its own."""
    from sslnb.evaluate import evaluate
    from sslnb.params import resolve
    from sslnb.train import pretrain
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work:
        p = resolve(args["params"], [f"device={o['device']}", f"out_dir={work}",
                                     f"eval.finetune_epochs={o['ft_epochs']}",
                                     "eval.finetune_blocks=[1, 2, all]", *o["demo_set"]])
        t0 = time.monotonic()
        run = pretrain(p, overwrite=True)
        t1 = time.monotonic()
        result = evaluate(run)
        t2 = time.monotonic()
        summary = json.loads((run / "summary.json").read_text())
    return {"pretrain_s": round(t1 - t0, 1), "evaluate_s": round(t2 - t1, 1),
            "summary": summary, "eval": {k: result.get(k) for k in ("pretrained", "random_init")}}


ITEMS = {"peak": item_peak, "sync": item_sync, "bench": item_bench, "demo": item_demo}

if __name__ == "__main__":
    sys.exit(main())
