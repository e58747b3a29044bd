"""The decode-once image cache: every image of a split decoded once, in parallel, into one
memory-mapped uint8 file, so that each epoch reads pixels instead of decoding JPEGs.

<cache_dir>/<source>-<split>-<size>px-<key>/
  pixels.u8   uint8 (N, 3, size, size): short side resized to `size`, centre-cropped, RGB
  index.json  labels, source paths, classes, skipped files with the reason, the params that made
              it and a checksum of pixels.u8

The key hashes the source, the root, the size and the file list (relative paths and byte sizes),
so a changed dataset, size or class list makes a new cache instead of reusing a stale one. A cache
is built in a '.partial' folder and renamed into place when complete: a killed build leaves
nothing that a later run could mistake for a cache.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .layouts import Listing

FORMAT = 1
CHUNK = 64  # images per worker task


def default_dir() -> Path:
    """$SSLNB_CACHE, else ~/.cache/sslnb (on Kaggle /kaggle/input is read-only; this is not)."""
    return Path(os.environ.get("SSLNB_CACHE", "~/.cache/sslnb")).expanduser()


def cache_key(listing: Listing, source: str, size: int) -> str:
    h = hashlib.sha256(json.dumps({"format": FORMAT, "source": source,
                                   "root": str(listing.root.resolve()), "split": listing.split,
                                   "size": size, "classes": listing.classes}).encode())
    for f, lab in zip(listing.files, listing.labels):
        h.update(f"{f.relative_to(listing.root)}\0{f.stat().st_size}\0{lab}\n".encode())
    return h.hexdigest()[:16]


def decode(path: str, size: int) -> np.ndarray:
    """One image as uint8 (3, size, size): any mode (grayscale, CMYK, palette, alpha) to RGB, short
    side resized to `size` (JPEGs are DCT-downscaled while decoding, which is several times
    faster for large photos), centre-cropped."""
    from PIL import Image
    with Image.open(path) as im:
        im.draft("RGB", (size, size))  # JPEG only; keeps both sides >= size
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")  # alpha is composited on white, not dropped to black
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
        im = im.convert("RGB")
        w, h = im.size
        scale = size / min(w, h)
        rw, rh = max(size, round(w * scale)), max(size, round(h * scale))
        im = im.resize((rw, rh), Image.BICUBIC, reducing_gap=3.0)
        left, top = (rw - size) // 2, (rh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        return np.asarray(im).transpose(2, 0, 1)


def _decode_chunk(task: tuple) -> list[tuple[int, str | None]]:
    """Worker: decode images [start, start+len) into the shared memory-mapped file."""
    pixels_path, n, size, start, paths = task
    out = np.memmap(pixels_path, dtype=np.uint8, mode="r+", shape=(n, 3, size, size))
    results = []
    for i, p in enumerate(paths, start):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # PIL's EXIF / decompression-bomb chatter
                out[i] = decode(p, size)
            results.append((i, None))
        except Exception as e:  # noqa: BLE001 - any unreadable file is skipped and listed
            results.append((i, f"{type(e).__name__}: {e}"))
    out.flush()
    return results


def required_bytes(n: int, size: int) -> int:
    return n * 3 * size * size


def _check_disk(target: Path, n: int, size: int) -> None:
    need = required_bytes(n, size)
    target.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(target).free
    if free < need * 1.05 + (64 << 20):
        raise DataError(
            f"The image cache for {n:,} images at {size}px needs {need / 2**30:.1f} GiB, but "
            f"'{target}' has {free / 2**30:.1f} GiB free. Point the cache at a larger disk "
            f"(data.cache_dir or the SSLNB_CACHE environment variable), free space, or lower "
            f"data.image_size / data.cache_size.")


def build(listing: Listing, source: str, size: int, cache_dir: Path, workers: int | None,
          progress: bool = True) -> Path:
    """Decode every image of `listing` once into a new cache folder; returns the folder."""
    from tqdm import tqdm
    n = len(listing.files)
    folder = cache_dir / f"{source}-{listing.split}-{size}px-{cache_key(listing, source, size)}"
    _check_disk(cache_dir, n, size)
    partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    pixels = partial / "pixels.u8"
    np.memmap(pixels, dtype=np.uint8, mode="w+", shape=(max(n, 1), 3, size, size)).flush()
    paths = [str(f) for f in listing.files]
    tasks = [(str(pixels), max(n, 1), size, s, paths[s:s + CHUNK]) for s in range(0, n, CHUNK)]
    workers = workers or os.cpu_count() or 1
    start = time.perf_counter()
    failed: dict[int, str] = {}
    bar = tqdm(total=n, desc=f"decoding {source}/{listing.split} once", unit="img",
               disable=not progress or os.environ.get("SSLNB_PROGRESS", "1") == "0")
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    with ctx.Pool(min(workers, max(1, len(tasks)))) as pool:
        for results in pool.imap_unordered(_decode_chunk, tasks):
            failed.update({i: why for i, why in results if why is not None})
            bar.update(len(results))
    bar.close()
    seconds = time.perf_counter() - start
    keep = [i for i in range(n) if i not in failed]
    if not keep:
        shutil.rmtree(partial)
        raise DataError(f"data.root '{listing.root}': none of the {n} images of split "
                        f"'{listing.split}' could be decoded (first error: "
                        f"{next(iter(failed.values()), 'no files')}).")
    checksum = _compact(pixels, n, size, keep)
    index = {
        "format": FORMAT, "source": source, "root": str(listing.root.resolve()),
        "split": listing.split, "size": size, "count": len(keep),
        "classes": list(listing.classes), "names": listing.names, "groups": listing.groups,
        "notes": listing.notes, "labels": [listing.labels[i] for i in keep],
        "files": [str(listing.files[i].relative_to(listing.root)) for i in keep],
        "skipped": [{"file": str(listing.files[i].relative_to(listing.root)), "reason": why}
                    for i, why in sorted(failed.items())],
        "checksum": checksum, "build_seconds": round(seconds, 2),
        "images_per_s": round(n / seconds, 1), "workers": workers,
    }
    (partial / "index.json").write_text(json.dumps(index))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)  # atomic: the cache appears complete or not at all
    return folder


def _compact(pixels: Path, n: int, size: int, keep: list[int]) -> str:
    """Drop the rows of skipped images (moving later rows down), truncate, and hash the result."""
    arr = np.memmap(pixels, dtype=np.uint8, mode="r+", shape=(max(n, 1), 3, size, size))
    if len(keep) != n:
        for dst, src in enumerate(keep):
            if dst != src:
                arr[dst] = arr[src]
    arr.flush()
    del arr
    row = 3 * size * size
    with open(pixels, "r+b") as f:
        f.truncate(len(keep) * row)
    return digest(pixels)


def digest(path: Path) -> str:
    """blake2b of a file, read in 64 MiB blocks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(64 << 20):
            h.update(block)
    return f"blake2b:{h.hexdigest()}"


def find(listing: Listing, source: str, size: int, cache_dir: Path) -> Path | None:
    folder = cache_dir / f"{source}-{listing.split}-{size}px-{cache_key(listing, source, size)}"
    return folder if (folder / "index.json").is_file() else None


def load(folder: Path) -> tuple[torch.Tensor, dict]:
    """The cached pixels as a uint8 tensor backed by the memory-mapped file (copy-on-write: pages
    are read on use and shared with the OS cache), and the index."""
    index = json.loads((folder / "index.json").read_text())
    n, size = index["count"], index["size"]
    pixels = folder / "pixels.u8"
    if pixels.stat().st_size != required_bytes(n, size):
        raise DataError(f"image cache '{folder}' is damaged: pixels.u8 holds "
                        f"{pixels.stat().st_size} bytes, its index says {n} images of {size}px. "
                        f"Delete the folder; the next run rebuilds it.")
    arr = np.memmap(pixels, dtype=np.uint8, mode="c", shape=(n, 3, size, size))
    return torch.from_numpy(arr), index


def verify(folder: Path) -> bool:
    """Recompute the checksum of pixels.u8 (slow for big caches; not done on every load)."""
    index = json.loads((folder / "index.json").read_text())
    return index["checksum"] == digest(folder / "pixels.u8")
