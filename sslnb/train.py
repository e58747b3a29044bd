"""Self-supervised pretraining loop for MAE and SimCLR.

Everything random in a step (data order, crops, jitter, masks) is drawn from generators seeded by
(seed, epoch) or (seed, step), so a run stopped and resumed from a checkpoint produces the same
weights as one that never stopped. The step makes no host synchronisation: losses accumulate on
the device and are read every `train.log_every` steps.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from . import distributed, runs
from .augment import BatchAugment
from .data import ImageSet, load_split
from .data.feeder import Feeder
from .device import device_name, peak_memory_mb, resolve_device, resolve_precision
from .errors import ParamsError
from .models import build_model, count_params
from .optim import build_optimizer, set_lr, warmup_cosine
from .params import checkpoint_interval, resolve
from .randomness import global_rows, step_generator


def world() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed * 7919 + epoch)
    return torch.randperm(n, generator=g)


def batch_indices(n: int, seed: int, start_step: int, total_steps: int, steps_per_epoch: int,
                  accum: int, batch: int, world_size: int, rank: int,
                  device: torch.device | str = "cpu"):
    """The image indices of every micro-batch of this process from `start_step` on: each epoch a
    fresh permutation (a pure function of seed and epoch), cut into consecutive batches. The
    permutation moves to `device` once per epoch, so steps copy nothing from the host."""
    order, order_epoch = None, -1
    for step in range(start_step, total_steps):
        epoch, in_epoch = divmod(step, steps_per_epoch)
        if epoch != order_epoch:
            order, order_epoch = epoch_order(n, seed, epoch).to(device), epoch
        for micro in range(accum):
            first = (in_epoch * accum + micro) * batch * world_size
            yield order[first + rank * batch: first + (rank + 1) * batch]


def progress(total: int, initial: int, desc: str):
    """A bar that reads well in a terminal, and as sparse plain lines in papermill logs;
    SSLNB_PROGRESS=0 turns it off (the report build does, so bars do not fill the report)."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=tty,
                mininterval=0.5 if tty else 10.0, ascii=not tty, leave=True,
                disable=os.environ.get("SSLNB_PROGRESS", "1") == "0")  # report builds set 0


def autocast(device: torch.device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def pretrain(params: dict | str | Path, overrides=None, resume: bool = False,
             overwrite: bool = False, stop_after_steps: int | None = None,
             reuse: bool = False) -> Path:
    """Pretrain one run and return its directory. `params` is a resolved dict or a params file.

    reuse: return at once when the run directory already holds a finished run of the same params
    and the same sslnb code; otherwise replace it (the report's runs are rebuilt this way).

    stop_after_steps: checkpoint and return after this many optimizer steps in this call (for
    time-boxed sessions and tests); `resume=True` continues from the run's last checkpoint.
    """
    p = params if isinstance(params, dict) and overrides is None else resolve(params, overrides)
    if p["resume"] == "auto" and not overwrite and not resume:
        resume, overwrite = runs.auto_resume(p)
    if reuse:
        done = runs.finished_same_run(p)
        if done is not None:
            print(f"reusing finished run {done} (same params, same code)")
            return done
        overwrite = True
    distributed.init_from_env(p["device"])  # under torchrun: join the process group
    device = distributed.local_device(resolve_device(p["device"]))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest convolutions once
    amp_dtype, use_scaler = resolve_precision(p["precision"], device)
    rank, world_size = world()
    t = p["train"]
    every_kind, every_n = checkpoint_interval(t["checkpoint_every"])
    runs.check_writable(p["out_dir"])  # before the expensive work, and before writing anything

    data = load_split(p["data"], "pretrain")
    per_step = t["batch_size"] * t["accum_steps"] * world_size
    steps_per_epoch = len(data) // per_step
    if steps_per_epoch == 0:
        raise ParamsError(
            f"train.batch_size={t['batch_size']} x train.accum_steps={t['accum_steps']} x "
            f"{world_size} process(es) = {per_step} images per step, but the training set has only "
            f"{len(data)}. Lower the batch size or use more data.")
    total_steps = steps_per_epoch * t["epochs"]
    run = runs.prepare(p, resume=resume, overwrite=overwrite) if rank == 0 else runs.run_dir_of(p)
    if world_size > 1:
        dist.barrier()  # the run directory exists (or the refusal was raised) before others go on

    torch.manual_seed(p["seed"])  # model initialisation
    net = build_model(p).to(device)  # the unwrapped module: checkpoints and sizes come from it
    if world_size > 1 and t["sync_bn"]:
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # statistics of the global batch
    if p["method"] == "simclr" and t["channels_last"]:
        net = net.to(memory_format=torch.channels_last)
    lr_peak = t["base_lr"] * per_step / 256
    opt = build_optimizer(net, t["optimizer"], lr_peak, t["weight_decay"], t["betas"],
                          t["momentum"])
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)
    step = 0
    if resume:
        path, state = runs.latest_checkpoint(run, map_location=device)
        if (state.get("method"), state.get("encoder")) != (p["method"], p["model"]["encoder"]):
            raise runs.RunError(
                f"--resume: checkpoint '{path}' was made by {state.get('method')}/"
                f"{state.get('encoder')}, but the params say {p['method']}/"
                f"{p['model']['encoder']}. Resume with the run's own params, or start a new run.")
        if state.get("images_per_step", per_step) != per_step:
            raise runs.RunError(
                f"--resume: the checkpoint was made with {state['images_per_step']} images per "
                f"optimizer step, this launch gives {per_step} (batch_size {t['batch_size']} x "
                f"accum_steps {t['accum_steps']} x {world_size} processes). Keep the global batch: "
                f"set train.accum_steps so that the product is {state['images_per_step']}.")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        step = state["step"]
        if "rng" in state:
            runs.set_rng_states(state["rng"])
    model = torch.nn.parallel.DistributedDataParallel(
        net, device_ids=[device.index] if device.type == "cuda" else None) if world_size > 1 else net
    forward = torch.compile(model) if t["compile"] else model

    augment = BatchAugment(p["augment"], p["data"]["image_size"], p["data"]["mean"],
                           p["data"]["std"])
    feeder = Feeder(data.images, device, p["data"]["placement"])  # uint8, decoded once
    batches = feeder.stream(batch_indices(len(data), p["seed"], step, total_steps,
                                          steps_per_epoch, t["accum_steps"], t["batch_size"],
                                          world_size, rank, feeder.index_device))
    warmup = int(round(t["warmup_epochs"] * steps_per_epoch))
    if rank == 0:
        log_steps = runs.JsonlLog(run / "metrics" / "steps.jsonl", keep_until_step=step)
        log_epochs = runs.JsonlLog(run / "metrics" / "epochs.jsonl",
                                   keep_until_step=step // steps_per_epoch, key="epoch")
        if not resume:
            runs.write_json(run / "env.json", runs.environment(device))
            runs.write_json(run / "model.json", describe(p, net))
            runs.write_json(run / "data.json", data_summary(data))

    finite = torch.ones((), dtype=torch.bool, device=device)  # every step's loss, no host sync

    def checkpoint() -> None:
        nonlocal last_save, step_saved
        if not bool(finite):  # one sync per checkpoint: never save weights past a NaN
            raise non_finite_error(step, lr, p, last_good=step_saved)
        last_save = time.monotonic()
        if rank:
            return
        runs.save_checkpoint(run / "checkpoints" / "last.pt", {
            "model": net.state_dict(), "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict(), "step": step, "epoch": step // steps_per_epoch,
            "method": p["method"], "encoder": p["model"]["encoder"], "rng": runs.rng_states(),
            "images_per_step": per_step, "world_size": world_size,
            "params": runs.params_mod._flatten(p)}, keep_previous=True)
        step_saved = step

    model.train()
    loss_sum = torch.zeros((), device=device)
    epoch_loss = torch.zeros((), device=device)
    steps_in_call = 0
    last_save, step_saved = time.monotonic(), step  # the step of the last good checkpoint
    bar = progress(total_steps, step, f"{p['method']} {p['name']}") if rank == 0 else None
    mark, mark_step, epoch_start = time.perf_counter(), step, time.perf_counter()
    try:
        while step < total_steps:
            in_epoch = step % steps_per_epoch
            if in_epoch == 0:
                epoch_loss.zero_()
                epoch_start = time.perf_counter()
            lr = warmup_cosine(step, total_steps, warmup, lr_peak, t["min_lr"])
            set_lr(opt, lr)
            try:
                step_loss = train_step(forward, model, opt, scaler, augment, batches, p, step,
                                       rank, device, amp_dtype)
            except torch.OutOfMemoryError:
                raise out_of_memory_error(p, device, world_size) from None
            step += 1
            steps_in_call += 1
            loss_sum += step_loss
            finite &= torch.isfinite(step_loss)
            epoch_loss += step_loss
            if rank == 0:
                bar.update(1)
            if step % t["log_every"] == 0 or step == total_steps:
                if world_size > 1:
                    dist.all_reduce(loss_sum)  # the mean over every process's samples
                    loss_sum /= world_size
                mean_loss = loss_sum.item() / (step - mark_step)  # the one host sync, every N steps
                now = time.perf_counter()
                ips = (step - mark_step) * per_step / (now - mark)
                if not math.isfinite(mean_loss):
                    raise non_finite_error(step, lr, p, last_good=step_saved, loss=mean_loss)
                if rank == 0:
                    log_steps.write({"step": step, "epoch": step / steps_per_epoch, "loss": mean_loss,
                                     "lr": lr, "images_per_s": ips})
                    bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.2e}", img_s=f"{ips:.0f}")
                loss_sum.zero_()
                mark, mark_step = now, step
            if step % steps_per_epoch == 0:
                if world_size > 1:
                    dist.all_reduce(epoch_loss)  # every process's samples, once per epoch
                    epoch_loss /= world_size
                seconds = time.perf_counter() - epoch_start
                if rank == 0:
                    log_epochs.write({
                        "epoch": step // steps_per_epoch, "step": step,
                        "loss": epoch_loss.item() / steps_per_epoch, "epoch_time_s": seconds,
                        "images_per_s": steps_per_epoch * per_step / seconds,
                        "peak_mem_mb": peak_memory_mb(device)})
            if checkpoint_due(every_kind, every_n, step, steps_per_epoch, last_save) \
                    or step == total_steps:
                checkpoint()
            if stop_after_steps is not None and steps_in_call >= stop_after_steps and step < total_steps:
                checkpoint()
                break
    except BaseException:
        if bar is not None:
            bar.close()  # an error message then starts on its own line
        raise
    if bar is not None:
        bar.close()
    if rank == 0 and step == total_steps:
        epochs = runs.read_jsonl(run / "metrics" / "epochs.jsonl")
        runs.write_json(run / "summary.json", {
            "method": p["method"], "encoder": p["model"]["encoder"], "steps": step,
            "epochs": t["epochs"], "images_per_step": per_step,
            "final_loss": epochs[-1]["loss"] if epochs else None,
            "epoch_time_s": sum(e["epoch_time_s"] for e in epochs) / max(1, len(epochs)),
            "images_per_s": sum(e["images_per_s"] for e in epochs) / max(1, len(epochs)),
            "peak_mem_mb": max((e["peak_mem_mb"] for e in epochs), default=None),
            "device": device_name(device), "precision": str(amp_dtype or "fp32"),
            "code_version": runs.code_version()})
    return run


def checkpoint_due(kind: str, n: float, step: int, steps_per_epoch: int, last_save: float) -> bool:
    if kind == "steps":
        return step % int(n) == 0
    if kind == "epochs":
        return step % steps_per_epoch == 0 and (step // steps_per_epoch) % int(n) == 0
    return time.monotonic() - last_save >= n * 60


def views(augment, x: torch.Tensor, g: list, p: dict) -> list[torch.Tensor]:
    """What the model sees of a uint8 batch: one augmented view for MAE, two for SimCLR
    (channels_last for ResNets)."""
    if p["method"] == "mae":
        return [augment(x, g[0])]
    out = [augment(x, g[0]), augment(x, g[1])]
    if p["train"]["channels_last"]:
        out = [v.contiguous(memory_format=torch.channels_last) for v in out]
    return out


def method_loss(forward, batch_views: list, g: list, p: dict) -> torch.Tensor:
    """MAE masks with generator g[1]; SimCLR contrasts its two views."""
    return forward(batch_views[0], g[1])[0] if p["method"] == "mae" else forward(*batch_views)[0]


def train_step(forward, model, opt, scaler, augment, batches, p: dict, step: int, rank: int,
               device: torch.device, amp_dtype) -> torch.Tensor:
    """One optimizer step over `train.accum_steps` micro-batches drawn from `batches`; returns the
    mean loss as a device tensor. Nothing in it waits for the device (no .item(), no host copy;
    tests/test_speed.py counts), so the host runs ahead and the GPU never idles."""
    t = p["train"]
    step_loss = torch.zeros((), device=device)
    world_size = world()[1]
    for micro in range(t["accum_steps"]):
        x = next(batches)
        g = [step_generator(p["seed"], step * t["accum_steps"] + micro, v, device)
             for v in range(3)]
        with autocast(device, amp_dtype), global_rows(rank * x.shape[0], world_size * x.shape[0]):
            loss = method_loss(forward, views(augment, x, g, p), g, p)
        scaler.scale(loss / t["accum_steps"]).backward()
        step_loss += loss.detach() / t["accum_steps"]
    if t["grad_clip"] is not None:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), t["grad_clip"])
    scaler.step(opt)
    scaler.update()
    opt.zero_grad(set_to_none=True)
    return step_loss


def non_finite_error(step: int, lr: float, p: dict, last_good: int, loss: float | None = None):
    from .errors import RunError
    return RunError(
        f"non-finite loss{f' ({loss})' if loss is not None else ''} by step {step} (lr {lr:.3g}, "
        f"precision {p['precision']}); the run stopped and its last good checkpoint (step {last_good}) "
        f"is kept. Likely causes: fp16 overflow (use precision: bf16 or fp32), a learning rate too "
        f"high for the batch (lower train.base_lr, raise train.warmup_epochs, set "
        f"train.grad_clip: 1.0), then start the run again (--overwrite) or under another name.")


def out_of_memory_error(p: dict, device: torch.device, world_size: int):
    from .errors import RunError
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


def describe(p: dict, model: torch.nn.Module | None = None) -> dict:
    """Sizes of a configuration, as `python -m sslnb info` prints them."""
    model = model if model is not None else build_model(p)
    return {"method": p["method"], "encoder": p["model"]["encoder"],
            "encoder_params": count_params(model.encoder), "total_params": count_params(model),
            "feature_dim": model.feature_dim, "image_size": p["data"]["image_size"],
            "patch_size": p["model"]["patch_size"] if p["method"] == "mae" else None,
            "stem": p["model"]["stem"] if p["method"] == "simclr" else None}


def load_pretrained(run: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The model of a finished (or stopped) run, with its resolved params."""
    import yaml
    run = Path(run)
    if not (run / "params.yaml").is_file():
        raise runs.RunError(f"'{run}' is not a run directory (no params.yaml). Pretrain it first, "
                            f"or pass the directory printed by `python -m sslnb pretrain`.")
    p = yaml.safe_load((run / "params.yaml").read_text())
    state = runs.load_checkpoint(run / "checkpoints" / "last.pt")
    if state.get("method") != p["method"] or state.get("encoder") != p["model"]["encoder"]:
        raise runs.RunError(f"checkpoint in '{run}' was made by {state.get('method')}/"
                            f"{state.get('encoder')}, but the run's params say {p['method']}/"
                            f"{p['model']['encoder']}. The run directory is inconsistent.")
    model = build_model(p)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), p


__all__ = ["pretrain", "describe", "load_pretrained", "ImageSet"]
