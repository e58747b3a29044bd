"""Self-supervised pretraining of one run, for any method in sslnb/methods/.

`pretrain()` reads top to bottom in execution order: params, devices and processes, data and
schedule, model and optimiser, the run directory (and where a resumed run left off), the loop,
the summary. Everything random in a step (data order, crops, jitter, masks) is drawn from
generators keyed by (seed, epoch) or (seed, step), so a run stopped and resumed from a checkpoint
ends with the same weights as one that never stopped. The step makes no host synchronisation:
losses accumulate on the device and are read every `train.log_every` steps.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from . import checkpoint, distributed, encoders, methods, optim, runs
from .clock import ShareClock, isolated_epoch_time
from .augment import BatchAugment, batch_augment
from .data import ImageSet, load_split
from .data.feeder import Feeder
from .device import device_name, peak_memory_mb, resolve_device, resolve_precision
from .errors import ParamsError, RunError
from .optim import scaled_lr, set_lr, warmup_cosine
from .params import checkpoint_interval, flatten, resolve
from .randomness import global_rows, step_generator


def pretrain(params: dict | str | Path, overrides=None, *, resume: bool = False,
             overwrite: bool = False, stop_after_steps: int | None = None,
             reuse: bool = False) -> Path:
    """Pretrain one run and return its directory. `params` is a resolved dict or a params file.

    reuse: return at once when the run directory already holds a finished run of the same params
    and the same sslnb engine code; otherwise replace it (the report's runs are rebuilt this way).
    stop_after_steps: checkpoint and return after this many optimizer steps in this call (for
    time-boxed sessions and tests); `resume=True` continues from the run's last checkpoint.
    """
    p = params if isinstance(params, dict) and overrides is None else resolve(params, overrides)
    if p["resume"] == "auto" and not overwrite and not resume:
        resume, overwrite = runs.auto_resume(p)
    if reuse:
        done = runs.finished_same_run(p)
        if done is not None:
            return done
        overwrite = True
    t, method = p["train"], methods.get(p)

    distributed.init_from_env(p["device"])  # under torchrun: join the process group
    device = distributed.local_device(resolve_device(p["device"]))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions once
    amp_dtype, use_scaler = resolve_precision(p["precision"], device)
    rank, world_size = distributed.world()
    runs.check_writable(p["out_dir"])  # before the expensive work, and before writing anything

    torch.manual_seed(p["seed"])  # model initialisation; a bad encoder fails before any work
    net = method.prepare(methods.build_model(p), p).to(device)
    data = load_split(p["data"], "pretrain")
    sched = Schedule.of(len(data), t, world_size)
    if world_size > 1 and t["sync_bn"]:
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # statistics of the global batch
    opt = optim.for_run(net, p, sched.lr_peak, method.lr_scales(p))
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    run = open_run(p, resume, overwrite, rank, world_size)
    step = restore(run, p, net, opt, scaler, sched.images_per_step, device) if resume else 0
    if rank == 0 and not resume:
        checkpoint.write_json(run / "env.json", runs.environment(device, p["method"]))
        checkpoint.write_json(run / "model.json", methods.describe(p, net))
        checkpoint.write_json(run / "data.json", data_summary(data))

    model = torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None) if world_size > 1 else net
    train_step = TrainStep(model, opt, scaler, p, device, amp_dtype, sched.total_steps)
    feeder = Feeder(data.images, device, p["data"]["placement"])  # uint8, decoded once
    batches = feeder.stream(batch_indices(len(data), p["seed"], step, sched, t["batch_size"],
                                          rank, world_size, feeder.index_device))
    meter = Meter(run, step, sched, device, t["log_every"], f"{method.name} {p['name']}")
    saver = Saver(run, p, net, opt, scaler, sched, step, meter.finite)
    snapshots = Snapshots(run, net, sched, t["snapshots"], meter.finite)
    snapshots.after(step)  # step 0: the random-init encoder, the first point of the curves
    model.train()
    steps_in_call = 0
    with meter:
        while step < sched.total_steps:
            lr = warmup_cosine(step, sched.total_steps, sched.warmup_steps, sched.lr_peak,
                               t["min_lr"])
            set_lr(opt, lr)
            try:
                loss = train_step(batches, step)
            except torch.OutOfMemoryError:
                raise out_of_memory_error(p, device, world_size) from None
            step, steps_in_call = step + 1, steps_in_call + 1
            meter.update(step, loss, lr, p)
            saver.after(step, stop=stop_after_steps is not None
                        and steps_in_call >= stop_after_steps)
            snapshots.after(step)
            if saver.stopped:
                break
    if rank == 0 and step == sched.total_steps:
        summarise(run, p, sched, device, amp_dtype)
    return run


def pretrain_on_visible_gpus(p: dict, **kwargs):
    """sslnb.pretrain in one process per visible GPU when there are several (Kaggle's 2xT4),
    in this process otherwise; returns the run directory. Call it before anything uses the GPU."""
    gpus = torch.cuda.device_count() if p["device"] in ("auto", "cuda") else 0
    if gpus > 1:
        distributed.launch(pretrain, gpus, p, **kwargs)
        return runs.run_dir_of(p)
    return pretrain(p, **kwargs)


@dataclass
class Schedule:
    """Steps and learning rate of a run: the global batch sets both."""
    images_per_step: int   # batch_size x accum_steps x processes
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    lr_peak: float
    accum_steps: int

    @classmethod
    def of(cls, n_images: int, t: dict, world_size: int) -> "Schedule":
        per_step = t["batch_size"] * t["accum_steps"] * world_size
        steps_per_epoch = n_images // per_step
        if steps_per_epoch == 0:
            raise ParamsError(
                f"train.batch_size={t['batch_size']} x train.accum_steps={t['accum_steps']} x "
                f"{world_size} process(es) = {per_step} images per step, but the training set has "
                f"only {n_images}. Lower the batch size or use more data.")
        total = t.get("steps") or steps_per_epoch * t["epochs"]
        return cls(per_step, steps_per_epoch, total,
                   int(round(t["warmup_epochs"] * steps_per_epoch)),
                   scaled_lr(t["base_lr"], per_step), t["accum_steps"])


def open_run(p: dict, resume: bool, overwrite: bool, rank: int, world_size: int) -> Path:
    """Rank 0 creates (or reopens) the run directory; the others wait for it."""
    run = runs.prepare(p, resume=resume, overwrite=overwrite) if rank == 0 else runs.run_dir_of(p)
    if world_size > 1:
        dist.barrier()  # the run directory exists (or the refusal was raised) before others go on
    return run


def restore(run: Path, p: dict, net, opt, scaler, images_per_step: int, device) -> int:
    """Load the newest loadable checkpoint into model, optimiser, scaler and generators; return
    its step. A checkpoint of another method, encoder or global batch is refused."""
    path, state = checkpoint.latest_checkpoint(run, map_location=device)
    checkpoint.check_origin(state, p, f"--resume: checkpoint '{path}'",
                            "Resume with the run's own params, or start a new run.")
    if state.get("images_per_step", images_per_step) != images_per_step:
        t = p["train"]
        raise RunError(
            f"--resume: the checkpoint was made with {state['images_per_step']} images per "
            f"optimizer step, this launch gives {images_per_step} (batch_size {t['batch_size']} x "
            f"accum_steps {t['accum_steps']} x processes). Keep the global batch: set "
            f"train.accum_steps so that the product is {state['images_per_step']}.")
    net.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    if "rng" in state:
        checkpoint.set_rng_states(state["rng"])
    return state["step"]


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.randperm(n, generator=g)


def batch_indices(n: int, seed: int, start_step: int, sched: Schedule, batch: int, rank: int,
                  world_size: int, device: torch.device | str = "cpu"):
    """The image indices of every micro-batch of this process from `start_step` on: each epoch a
    fresh permutation (a pure function of seed and epoch), cut into consecutive global batches of
    which this process takes its rows. The permutation moves to `device` once per epoch, so steps
    copy nothing from the host."""
    order, order_epoch = None, -1
    for step in range(start_step, sched.total_steps):
        epoch, in_epoch = divmod(step, sched.steps_per_epoch)
        if epoch != order_epoch:
            order, order_epoch = epoch_order(n, seed, epoch).to(device), epoch
        for micro in range(sched.accum_steps):
            first = (in_epoch * sched.accum_steps + micro) * batch * world_size
            yield order[first + rank * batch: first + (rank + 1) * batch]


def autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class TrainStep:
    """One optimizer step over `train.accum_steps` micro-batches; returns the mean loss as a
    device tensor. Nothing in it waits for the device (no .item(), no host copy;
    tests/test_speed.py counts), so the host runs ahead and the GPU never idles. The views are
    made outside autocast (augmentation in fp32, as torchvision's), the model and loss inside;
    the losses keep their logits in fp32 themselves (losses.full_precision). The model is
    compiled once, here, when train.compile is set; only tensors enter it."""

    def __init__(self, model, opt, scaler, p: dict, device: torch.device, amp_dtype,
                 total_steps: int, augments: list | None = None):
        self.model, self.opt, self.scaler = model, opt, scaler
        self.net = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) \
            else model  # what the method's after-step hook updates (a teacher, a center)
        self.forward = torch.compile(model) if p["train"]["compile"] else model
        self.p, self.t, self.method = p, p["train"], methods.get(p)
        self.augments = augments if augments is not None else augments_of(self.method, p)
        self.n_generators = self.method.generators(p)
        self.device, self.amp_dtype, self.total_steps = device, amp_dtype, total_steps
        self.rank, self.world_size = distributed.world()

    def __call__(self, batches, step: int, mark=None) -> torch.Tensor:
        """`mark(phase)` is called as each phase ends (data, augmentation, forward, backward,
        optimizer): the benchmark's breakdown synchronises there; training passes none."""
        mark = mark or _no_mark
        accum = self.t["accum_steps"]
        step_loss = torch.zeros((), device=self.device)
        for micro in range(accum):
            x = next(batches)
            mark("data")
            g = [step_generator(self.p["seed"], step * accum + micro, v, self.device)
                 for v in range(self.n_generators)]
            # DDP all-reduces gradients during backward; under accumulation only the last
            # micro-step needs it (as nanoGPT's require_backward_grad_sync), the others add up.
            with self._sync(micro == accum - 1):
                with global_rows(self.rank * x.shape[0], self.world_size * x.shape[0]):
                    views = self.method.views(self.augments, x, g, self.p)  # in full precision
                mark("augmentation")
                with autocast(self.device, self.amp_dtype):
                    loss = self.method.loss(self.forward, views, g)
                mark("forward")
                self.scaler.scale(loss / accum).backward()
                mark("backward")
            step_loss += loss.detach() / accum
        if self.t["grad_clip"] is not None:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.t["grad_clip"])
        self.method.before_step(self.net, self.opt, step, self.total_steps, self.p)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        self.method.after_step(self.net, self.opt, step + 1, self.total_steps, self.p)
        mark("optimizer")
        return step_loss

    def _sync(self, last: bool):
        if last or not isinstance(self.model, torch.nn.parallel.DistributedDataParallel):
            return contextlib.nullcontext()
        return self.model.no_sync()


def _no_mark(phase: str) -> None:
    pass


def augments_of(method, p: dict) -> list[BatchAugment]:
    """The batched augmentations of a method's kinds of view (Method.augments), in its order."""
    return [batch_augment(p, a, a["size"]) for a in method.augments(p)]


def progress(total: int, initial: int, desc: str):
    """A bar that reads well in a terminal, and as sparse plain lines in papermill logs;
    SSLNB_PROGRESS=0 turns it off (the report build does, so bars do not fill the report)."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=tty,
                mininterval=0.5 if tty else 10.0, ascii=not tty, leave=True,
                disable=os.environ.get("SSLNB_PROGRESS", "1") == "0")


class Meter:
    """Losses summed on the device, read every `log_every` steps (the only host syncs) and at
    each epoch's end, averaged over processes; metric lines and the progress bar on rank 0."""

    def __init__(self, run: Path, step: int, sched: Schedule, device, log_every: int, desc: str):
        self.sched, self.device, self.log_every = sched, device, log_every
        rank, self.world_size = distributed.world()
        self.rank0 = rank == 0
        self.loss_sum = torch.zeros((), device=device)
        self.epoch_loss = torch.zeros((), device=device)
        self.finite = torch.ones((), dtype=torch.bool, device=device)  # every step's loss
        self.mark, self.mark_step = time.perf_counter(), step
        self.clock = ShareClock(self.world_size)  # did the epoch have the machine to itself?
        self.bar = progress(sched.total_steps, step, desc) if self.rank0 else None
        if self.rank0:
            spe = sched.steps_per_epoch
            self.steps_log = runs.JsonlLog(run / "metrics" / "steps.jsonl", keep_until_step=step)
            self.epochs_log = runs.JsonlLog(run / "metrics" / "epochs.jsonl",
                                            keep_until_step=step // spe, key="epoch")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()  # an error message then starts on its own line

    def _mean(self, total: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(total)  # the mean over every process's samples
            total /= self.world_size
        return total

    def update(self, step: int, loss: torch.Tensor, lr: float, p: dict) -> None:
        self.loss_sum += loss
        self.epoch_loss += loss
        self.finite &= torch.isfinite(loss)
        if self.bar is not None:
            self.bar.update(1)
        if step % self.log_every == 0 or step == self.sched.total_steps:
            mean_loss = self._mean(self.loss_sum).item() / (step - self.mark_step)  # host sync
            now = time.perf_counter()
            ips = (step - self.mark_step) * self.sched.images_per_step / (now - self.mark)
            if not math.isfinite(mean_loss):
                raise non_finite_error(step, lr, p, loss=mean_loss)
            if self.rank0:
                self.steps_log.write({"step": step, "epoch": step / self.sched.steps_per_epoch,
                                      "loss": mean_loss, "lr": lr, "images_per_s": ips})
                self.bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{ips:.0f}")
            self.loss_sum.zero_()
            self.mark, self.mark_step = now, step
        spe = self.sched.steps_per_epoch
        if step % spe == 0:
            epoch_loss = self._mean(self.epoch_loss).item() / spe  # waits for the device
            share = self.clock.read()
            seconds = share.pop("wall_s")
            if self.rank0:
                self.epochs_log.write({
                    "epoch": step // spe, "step": step, "loss": epoch_loss,
                    "epoch_time_s": seconds, "images_per_s": spe * self.sched.images_per_step / seconds,
                    "peak_mem_mb": peak_memory_mb(self.device), **share})
            self.epoch_loss.zero_()
            self.clock.start()


class Saver:
    """Checkpoints every `train.checkpoint_every` (and at the end, and when told to stop), never
    past a non-finite loss; rank 0 writes, every process keeps the same clock."""

    def __init__(self, run: Path, p: dict, net, opt, scaler, sched: Schedule, step: int,
                 finite: torch.Tensor):
        self.run, self.p, self.net, self.opt, self.scaler, self.sched = run, p, net, opt, scaler, sched
        self.finite = finite  # the Meter's device flag: every loss so far was finite
        self.rank, self.world_size = distributed.world()
        self.kind, self.every = checkpoint_interval(p["train"]["checkpoint_every"])
        self.last_time, self.last_step = time.monotonic(), step  # the last good checkpoint
        self.stopped = False

    def after(self, step: int, stop: bool = False) -> None:
        if step == self.sched.total_steps or stop or checkpoint_due(
                self.kind, self.every, step, self.sched.steps_per_epoch, self.last_time):
            self.save(step)
        self.stopped = stop and step < self.sched.total_steps

    def save(self, step: int) -> None:
        if not bool(self.finite):  # one sync per checkpoint: never save weights past a NaN
            raise non_finite_error(step, float("nan"), self.p, last_good=self.last_step)
        self.last_time = time.monotonic()
        if self.rank == 0:
            checkpoint.save_checkpoint(self.run / "checkpoints" / "last.pt", {
                "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
                "scaler": self.scaler.state_dict(), "step": step,
                "epoch": step // self.sched.steps_per_epoch, "method": self.p["method"],
                "encoder": encoders.spec(self.p).name, "rng": checkpoint.rng_states(),
                "images_per_step": self.sched.images_per_step, "world_size": self.world_size,
                "params": flatten(self.p)}, keep_previous=True)
        self.last_step = step


def snapshot_steps(total_steps: int, n: int | list[int]) -> list[int]:
    """n evenly spaced steps of a schedule, step 0 and the last included (n = 1: the last); or
    the listed steps within the schedule, and the last (placed where a budget is read)."""
    if isinstance(n, list):
        return sorted({s for s in n if s <= total_steps} | {total_steps})
    if n <= 0:
        return []
    if n == 1:
        return [total_steps]
    return sorted({round(i * total_steps / (n - 1)) for i in range(n)})


class Snapshots:
    """The encoder's weights at `train.snapshots` points of the schedule (snapshots/step_N.pt):
    the study's probing across pretraining, and accuracy against compute. Encoder only (no
    optimiser, no decoder or head): what features and probes need."""

    def __init__(self, run: Path, net, sched: Schedule, n: int, finite: torch.Tensor):
        self.run, self.net, self.sched, self.finite = run, net, sched, finite
        self.steps = set(snapshot_steps(sched.total_steps, n))
        self.rank0 = distributed.world()[0] == 0

    def after(self, step: int) -> None:
        if step not in self.steps or not self.rank0:
            return
        path = checkpoint.snapshot_path(self.run, step)
        if path.is_file():  # a resumed run keeps what it already saved
            return
        if not bool(self.finite):  # one sync per snapshot; Saver raises the error at its save
            return
        checkpoint.save_checkpoint(path, {
            "encoder": self.net.encoder.state_dict(), "step": step,
            "epoch": step / self.sched.steps_per_epoch,
            "images_seen": step * self.sched.images_per_step})


def checkpoint_due(kind: str, n: float, step: int, steps_per_epoch: int, last_save: float) -> bool:
    """train.checkpoint_every as (kind, n): every n steps, every n epochs, or n minutes after the
    last save (time.monotonic)."""
    if kind == "steps":
        return step % int(n) == 0
    if kind == "epochs":
        return step % steps_per_epoch == 0 and (step // steps_per_epoch) % int(n) == 0
    return time.monotonic() - last_save >= n * 60


def summarise(run: Path, p: dict, sched: Schedule, device, amp_dtype) -> None:
    epochs = runs.read_jsonl(run / "metrics" / "epochs.jsonl")
    n = max(1, len(epochs))
    isolated, alone, flagged = isolated_epoch_time(epochs)
    checkpoint.write_json(run / "summary.json", {
        "method": p["method"], "encoder": encoders.spec(p).name, "steps": sched.total_steps,
        "epochs": sched.total_steps / sched.steps_per_epoch, "images_per_step": sched.images_per_step,
        "final_loss": epochs[-1]["loss"] if epochs else None,
        "epoch_time_s": sum(e["epoch_time_s"] for e in epochs) / n,
        "images_per_s": sum(e["images_per_s"] for e in epochs) / n,
        "isolated_epoch_time_s": isolated, "epochs_alone": alone, "epochs_contended": flagged,
        "peak_mem_mb": max((e["peak_mem_mb"] for e in epochs), default=None),
        "device": device_name(device), "precision": str(amp_dtype or "fp32"),
        "code_version": runs.code_version("pretrain", p["method"])})


def non_finite_error(step: int, lr: float, p: dict, last_good: int | None = None,
                     loss: float | None = None) -> RunError:
    kept = (f"its last good checkpoint (step {last_good}) is kept" if last_good is not None
            else "its last good checkpoint is kept")
    at_lr = f"lr {lr:.3g}, " if math.isfinite(lr) else ""
    return RunError(
        f"non-finite loss{f' ({loss})' if loss is not None else ''} by step {step} ({at_lr}"
        f"precision {p['precision']}); the run stopped and {kept}. Likely causes: fp16 overflow "
        f"(use precision: bf16 or fp32), a learning rate too high for the batch (lower "
        f"train.base_lr, raise train.warmup_epochs, set train.grad_clip: 1.0), then start the run "
        f"again (--overwrite) or under another name.")


def out_of_memory_error(p: dict, device: torch.device, world_size: int) -> RunError:
    t = p["train"]
    seen = peak_memory_mb(device)
    total = (torch.cuda.get_device_properties(device).total_memory / 2**20
             if device.type == "cuda" else None)
    fit_batch = max(1, t["batch_size"] // 2)
    fit_accum = t["accum_steps"] * t["batch_size"] // fit_batch
    return RunError(
        f"out of memory on {device_name(device)} with train.batch_size={t['batch_size']} per "
        f"process (accum_steps={t['accum_steps']}, {world_size} process(es)); peak memory seen "
        f"{seen if seen is not None else '?'} MB" + (f" of {total:.0f} MB" if total else "") +
        f". The same effective batch with half the memory: --set train.batch_size={fit_batch} "
        f"--set train.accum_steps={fit_accum} (the lr follows the effective batch, so results "
        f"stay comparable); or use precision: bf16, or a smaller model. Checkpoints are kept; "
        f"resume with --resume.")


def data_summary(data: ImageSet) -> dict:
    """What pretraining saw, for the report: the classes (with names), counts, skipped files."""
    info = {k: v for k, v in data.info.items() if k not in ("groups", "skipped")}
    skipped = data.info.get("skipped", [])
    return {**info, "images": len(data), "skipped_count": len(skipped),
            "skipped": skipped[:50],
            "classes": [{"id": c, "name": data.names.get(c, c)} for c in data.used_classes()]}


__all__ = ["pretrain", "pretrain_on_visible_gpus", "TrainStep", "Schedule"]
