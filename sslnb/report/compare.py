"""The comparison table and the observations written from its numbers (no hard-coded claims)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from .. import methods
from ..errors import RunError

# Published linear-probe top-1 (%) that a run of the same data, method and encoder is read against
# (sources in ../shared/reference.md); cited in the observations only when such a run is present.
ANCHORS = [
    ("imagenet100", "mae", "vit_small_patch16_224", 33.7,
     "the study we reproduce (25-class pretraining, 100-class probe)"),
    ("imagenet100", "mae", "vit_base_patch16_224", 34.0,
     "the study we reproduce (25-class pretraining, 100-class probe)"),
    ("imagenet100", "simclr", "resnet50", 45.7,
     "the study we reproduce (25-class pretraining, 100-class probe)"),
    ("cifar10", "simclr", "resnet18", 90.7, "solo-learn, 1000 epochs"),
    ("stl10", "simclr", "resnet18", 74.5, "sthalles/SimCLR, 100 epochs"),
]


def _need(path: Path) -> Path:
    if not path.is_file():
        raise RunError(f"'{path}' is missing: the run has not been pretrained and evaluated. "
                       f"Run `python -m sslnb pretrain` and `python -m sslnb evaluate` for it, or "
                       f"build the whole report with `make report`.")
    return path


def _json(path: Path) -> dict:
    return json.loads(_need(path).read_text())


def collect(run_dirs: list[Path | str]) -> list[dict]:
    """One flat record per run, from its params, summary, model sizes, environment and eval."""
    rows = []
    for run in map(Path, run_dirs):
        p = yaml.safe_load(_need(run / "params.yaml").read_text())
        s, m, e = _json(run / "summary.json"), _json(run / "model.json"), _json(run / "eval.json")
        env = _json(run / "env.json")
        pre, rnd = e["pretrained"], e["random_init"]
        method = methods.get(p)
        rows.append({
            "run": run.name, "model": method.title, "method": p["method"],
            "source": p["data"]["source"], "encoder": p["model"]["encoder"],
            "architecture": method.architecture(p),
            "encoder_params_m": m["encoder_params"] / 1e6,
            "epoch_time_s": s["epoch_time_s"], "pretrain_time_s": s["epoch_time_s"] * s["epochs"],
            "train_top1": pre["probe_train_top1"], "val_top1": pre["probe_val_top1"],
            "val_top5": pre["probe_val_top5"], "knn_top1": pre["knn_top1"],
            "random_val_top1": rnd["probe_val_top1"], "random_knn_top1": rnd["knn_top1"],
            "finetune_top1": pre.get("finetune_top1"),
            "random_finetune_top1": rnd.get("finetune_top1"),
            "epochs": s["epochs"], "images_per_s": s["images_per_s"],
            "peak_mem_mb": s["peak_mem_mb"], "device": s["device"],
            "git_commit": env.get("git_commit"),
        })
    return rows


STUDY_COLUMNS = {  # record key -> column title: the study's table
    "model": "Model", "architecture": "Architecture", "encoder_params_m": "Parameters (M)",
    "epoch_time_s": "Train time/epoch (s)", "train_top1": "Train acc (%)", "val_top1": "Val acc (%)",
}
MORE_COLUMNS = {  # what a reviewer needs beside it
    "model": "Model", "val_top5": "Val top-5 (%)", "knn_top1": "kNN acc (%)", "random_val_top1": "Random-init val acc (%)",
    "finetune_top1": "Fine-tune acc (%)", "random_finetune_top1": "Fine-tune, random init (%)",
    "epochs": "Epochs", "images_per_s": "Images/s", "peak_mem_mb": "Peak memory (MB)",
    "device": "Device",
}


def table(rows: list[dict], columns: dict = STUDY_COLUMNS):
    """A pandas DataFrame of the given columns (the study's by default), rounded for reading."""
    import pandas as pd
    df = pd.DataFrame([{title: r[key] for key, title in columns.items()} for r in rows])
    return df.round(2).style.hide(axis="index").format(precision=2)


def observations(rows: list[dict]) -> list[str]:
    """Sentences derived from the numbers: each claim is computed, never typed in."""
    out = []
    for r in rows:
        gap = r["val_top1"] - r["random_val_top1"]
        verdict = "above" if gap > 0 else "not above"
        out.append(f"{r['model']} ({r['architecture']}): the linear probe reaches {r['val_top1']:.1f}% "
                   f"val top-1, {verdict} its random-init baseline ({r['random_val_top1']:.1f}%, "
                   f"{gap:+.1f} points); kNN {r['knn_top1']:.1f}% vs {r['random_knn_top1']:.1f}%.")
        if r["finetune_top1"] is not None and r["random_finetune_top1"] is not None:
            ft = r["finetune_top1"] - r["random_finetune_top1"]
            out.append(f"{r['model']} fine-tuned end to end: {r['finetune_top1']:.1f}% vs "
                       f"{r['random_finetune_top1']:.1f}% from random init ({ft:+.1f} points), "
                       f"compared with {gap:+.1f} points under the linear probe.")
        out.append(f"{r['model']} probe train/val gap: {r['train_top1'] - r['val_top1']:.1f} points.")
        for source, method, encoder, value, where in ANCHORS:
            if (r["source"], r["method"], r["encoder"]) == (source, method, encoder):
                out.append(f"Published anchor for {r['model']} {encoder} on {source}: {value:.1f}% "
                           f"({where}); this run {r['val_top1']:.1f}% "
                           f"({r['val_top1'] - value:+.1f} points, {r['epochs']} epochs).")
    if len(rows) >= 2:
        best = max(rows, key=lambda r: r["val_top1"])
        fastest = max(rows, key=lambda r: r["images_per_s"])
        out.append(f"Best linear probe: {best['model']} ({best['val_top1']:.1f}%). Fastest "
                   f"pretraining: {fastest['model']} ({fastest['images_per_s']:.0f} images/s on "
                   f"{fastest['device']}).")
    return out


# The study's throughput: ~3, ~4.5 and ~12 minutes per epoch of ~32,500 images (reference.md).
STUDY_SPEED = {"vit_small_patch16_224": 180.0, "vit_base_patch16_224": 120.0, "resnet50": 45.0}


def _step_row(r: dict, source: str) -> dict:
    study = STUDY_SPEED.get(r["encoder"]) if r["image_size"] == 224 else None
    ips = r["images_per_s"]["with_augmentation"]
    return {"file": source, "device": r["device"], "what": (
        f"train step {r['encoder']} {r['image_size']}px batch {r['batch_size']} "
        f"({r['precision']}{', compiled' if r.get('compile') else ''})"),
            "images/s": round(ips, 1),
            "figure": (f"resident tensors {r['images_per_s']['resident_tensors']:.0f}/s "
                       f"(augmented {100 * r['augmented_vs_resident']:.0f}% of it, augmentation "
                       f"{100 * r['augmentation_share']:.1f}% of a step); MFU "
                       f"{100 * r['mfu']:.1f}% of a measured {r['matmul_peak_tflops']:.3g} "
                       f"TFLOP/s matmul peak"),
            "study images/s": study, "x study": round(ips / study, 1) if study else None}


def performance(bench_dir: Path | str) -> list[dict]:
    """One row per measurement in logs/bench/*.json (CPU and GPU), hardware named, with the
    study's images/s beside the configurations it trained."""
    rows = []
    for f in sorted(Path(bench_dir).glob("*.json")):
        try:
            r = json.loads(f.read_text())
        except ValueError:
            continue
        kind, base = r.get("benchmark"), {"file": f.name, "device": r.get("device", r.get("gpu"))}
        if kind == "train_step":
            rows.append(_step_row(r, f.name))
        elif kind == "gpu_check":
            rows += [{**_step_row(s, f.name), "device": r["gpu"]} for s in r["steps"]]
        elif kind == "simclr_view_augmentation":
            ips = r["images_per_s"]
            rows.append({**base, "what": f"SimCLR view augmentation {r['image_size']}px",
                         "images/s": round(ips["batched"], 1),
                         "figure": f"{r['speedup']:.1f}x torchvision.transforms.v2 per sample "
                                   f"({ips['torchvision_v2_per_sample']:.0f}/s)"})
        elif kind == "pretrain_loop_overhead":
            for m, v in r["results"].items():
                rows.append({**base, "what": f"full loop vs bare step, {m} {v['encoder']}",
                             "images/s": round(v["full_loop_images_per_s"], 1),
                             "figure": f"loop overhead {100 * v['overhead']:+.1f}%"})
        elif kind == "data_feeding_224px":
            e = r["epoch_images_per_s"]
            rows.append({**base, "what": f"feeding 224px from JPEGs, {r['method_augmentation']} "
                                         f"augmentation, {r['workers']} workers",
                         "images/s": round(e["cache_feed_for_gpu"], 1),
                         "figure": (f"cache feed {r['speedup_gpu_training_feed']}x ImageFolder+PIL "
                                    f"DataLoader ({e['imagefolder_pil_dataloader']:.0f}/s); CPU-only "
                                    f"{r['speedup_cpu_only_training']}x; cache built at "
                                    f"{r['cache_build_images_per_s']:.0f}/s")})
    return rows


def performance_table(bench_dir: Path | str):
    import pandas as pd
    rows = performance(bench_dir)
    cols = ["device", "what", "images/s", "figure", "study images/s", "x study", "file"]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    return df.style.hide(axis="index").format(precision=1, na_rep="")
