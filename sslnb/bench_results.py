"""What the benchmarks wrote (logs/bench/*.json, written by sslnb.bench and the bench/ scripts),
read back as rows for a report's appendix: one row per measurement, its hardware named, the
study's images/s beside the configurations it trained. Light on purpose: a report reads it
without importing the training loop."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .params import ROOT_PARAMS

def _study_speed() -> dict:
    """The study's images/s per encoder at 224px (params/published.yaml)."""
    return yaml.safe_load((ROOT_PARAMS / "published.yaml").read_text(encoding="utf-8"))[
        "study_speed"]


def _step_row(r: dict, source: str) -> dict:
    study = _study_speed().get(r["encoder"]) if r["image_size"] == 224 else None
    ips = r["images_per_s"]["with_augmentation"]
    return {"file": source, "device": r["device"], "encoder": r["encoder"],
            "image_size": r["image_size"], "what": (
        f"train step {r['encoder']} {r['image_size']}px batch {r['batch_size']} "
        f"({r['precision']}{', compiled' if r.get('compile') else ''})"),
            "images/s": round(ips, 1),
            "figure": (f"resident tensors {r['images_per_s']['resident_tensors']:.0f}/s "
                       f"(augmented {100 * r['augmented_vs_resident']:.0f}% of it, augmentation "
                       f"{100 * r['augmentation_share']:.1f}% of a step); MFU "
                       f"{100 * r['mfu']:.1f}% of a measured {r['matmul_peak_tflops']:.3g} "
                       f"TFLOP/s matmul peak" + (
                           f", {100 * r['mfu_spec']:.1f}% of the datasheet's "
                           f"{r['spec_peak_tflops']:.4g}" if r.get("mfu_spec") else "")),
            "study images/s": study, "x study": round(ips / study, 1) if study else None}


def results(bench_dir: Path | str) -> list[dict]:
    """One row per measurement in logs/bench/*.json (CPU and GPU), hardware named, with the
    study's images/s beside the configurations it trained."""
    rows = []
    for f in sorted(Path(bench_dir).glob("gpu_check_*.jsonl")):  # one line per finished item
        for line in f.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("benchmark") == "train_step" and r.get("status") == "ok":
                rows.append(_step_row(r, f.name))
    for f in sorted(Path(bench_dir).glob("*.json")):
        try:
            r = json.loads(f.read_text())
        except ValueError:
            continue
        kind, base = r.get("benchmark"), {"file": f.name, "device": r.get("device", r.get("gpu"))}
        if kind == "train_step":
            rows.append(_step_row(r, f.name))
        elif kind == "simclr_view_augmentation":
            ips = r["images_per_s"]
            rows.append({**base, "image_size": r["image_size"], "what": f"SimCLR view augmentation {r['image_size']}px",
                         "images/s": round(ips["batched"], 1),
                         "figure": f"{r['speedup']:.1f}x torchvision.transforms.v2 per sample "
                                   f"({ips['torchvision_v2_per_sample']:.0f}/s)"})
        elif kind == "pretrain_loop_overhead":
            for m, v in r["results"].items():
                rows.append({**base, "encoder": v["encoder"],
                             "what": f"full loop vs bare step, {m} {v['encoder']}",
                             "images/s": round(v["full_loop_images_per_s"], 1),
                             "figure": f"loop overhead {100 * v['overhead']:+.1f}%"})
        elif kind == "data_feeding_224px":
            e = r["epoch_images_per_s"]
            rows.append({**base, "image_size": 224, "what": f"feeding 224px from JPEGs, {r['method_augmentation']} "
                                         f"augmentation, {r['workers']} workers",
                         "images/s": round(e["cache_feed_for_gpu"], 1),
                         "figure": (f"cache feed {r['speedup_gpu_training_feed']}x ImageFolder+PIL "
                                    f"DataLoader ({e['imagefolder_pil_dataloader']:.0f}/s); CPU-only "
                                    f"{r['speedup_cpu_only_training']}x; cache built at "
                                    f"{r['cache_build_images_per_s']:.0f}/s")})
    return rows


def results_table(bench_dir: Path | str, encoders: set | None = None, sizes: set | None = None,
                  devices: set | None = None):
    """The benchmarks of a report's own configurations and hardware: rows whose encoder, image
    size and device are among those given (a row that does not name one matches it)."""
    import pandas as pd
    rows = [r for r in results(bench_dir)
            if (encoders is None or r.get("encoder") in encoders | {None})
            and (sizes is None or r.get("image_size") in sizes | {None})
            and (devices is None or r["device"] in devices)]
    cols = ["device", "what", "images/s", "figure", "study images/s", "x study"]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    df = df.dropna(axis=1, how="all")
    return df.style.hide(axis="index").format(precision=1, na_rep="")
