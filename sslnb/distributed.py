"""Data-parallel training on torch.distributed (DDP; NCCL on GPUs, gloo on CPUs), started by
torchrun or, from a notebook, by `launch`.

    torchrun --nproc_per_node=2 -m sslnb pretrain --params params/imagenet100/mae_vit_b.yaml
    sslnb.launch(sslnb.pretrain, 2, "params/demo/mae_vit_tiny.yaml")   # in a notebook

Each process trains on its rows of every global batch (sslnb/train.py: batch_indices) and draws
its random numbers as rows of the global draw (sslnb/randomness.py), so N processes reproduce one
process with the same global batch. Only rank 0 writes logs and checkpoints. Collectives time out
after SSLNB_DIST_TIMEOUT seconds (default 600), so a dead peer stops the others with a message
instead of a hang.
"""
from __future__ import annotations

import datetime
import os
import socket

import torch
import torch.distributed as dist

from .errors import RunError


def world() -> tuple[int, int]:
    """(rank, world size) under torch.distributed, (0, 1) otherwise."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def timeout() -> datetime.timedelta:
    return datetime.timedelta(seconds=float(os.environ.get("SSLNB_DIST_TIMEOUT", "600")))


def backend_for(device_spec: str) -> str:
    return "nccl" if torch.cuda.is_available() and not device_spec.startswith("cpu") else "gloo"


def init_from_env(device_spec: str = "auto") -> bool:
    """Join the process group torchrun describes (WORLD_SIZE > 1); False when there is none."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if dist.is_initialized():
        return True
    backend = backend_for(device_spec)
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=timeout())
    return True


def local_device(device: torch.device) -> torch.device:
    """cuda -> cuda:LOCAL_RANK under torch.distributed: one GPU per process."""
    if device.type == "cuda" and device.index is None and dist.is_initialized():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, fn, nprocs: int, backend: str, args: tuple, kwargs: dict) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(nprocs))
    # The parent's OpenMP thread pool does not survive fork (libgomp deadlocks in the child's
    # first parallel region): forked processes compute with one CPU thread each. GPU training
    # hardly uses CPU threads; CPU-heavy multi-process runs should use torchrun (fresh processes).
    torch.set_num_threads(1)
    if backend == "nccl":
        torch.cuda.set_device(rank)
    dist.init_process_group(backend, rank=rank, world_size=nprocs, timeout=timeout())
    try:
        fn(*args, **kwargs)
    finally:
        dist.destroy_process_group()


def launch(fn, nprocs: int, *args, backend: str | None = None, **kwargs) -> None:
    """Run fn(*args, **kwargs) in `nprocs` processes joined in one process group (fork start
    method, so a notebook's functions need no pickling); in this process when nprocs == 1."""
    if nprocs <= 1:
        fn(*args, **kwargs)
        return
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        raise RunError("sslnb.launch: CUDA is already initialised in this process, and forked "
                       "processes cannot use it. Call launch before anything touches the GPU "
                       "(restart the kernel and run launch first), or use torchrun.")
    backend = backend or ("nccl" if torch.cuda.device_count() >= nprocs else "gloo")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(_free_port())
    import torch.multiprocessing as mp
    try:
        mp.start_processes(_worker, args=(fn, nprocs, backend, args, kwargs), nprocs=nprocs,
                           start_method="fork", join=True)
    except mp.ProcessExitedException as e:
        raise RunError(f"sslnb.launch: process {e.error_index} of {nprocs} exited with code "
                       f"{e.exit_code}; the others were stopped. Completed checkpoints are kept: "
                       f"resume with resume=True (or --resume).") from None
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else "an error"
        raise RunError(f"sslnb.launch: process {e.error_index} of {nprocs} failed ({last}); the "
                       f"others were stopped. Completed checkpoints are kept: resume with "
                       f"resume=True (or --resume).") from None
