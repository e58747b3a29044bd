#!/usr/bin/env bash
# One GPU check, under 8 minutes on one H100/H200-class GPU: training-step speed of every
# full-scale configuration (params/imagenet100/*.yaml: resident tensors and real batched
# augmentation, MFU against the measured bf16 matmul peak; ViT-B also with torch.compile), then
# every demo configuration's pretraining and evaluation (fine-tuning included) on the GPU.
# Writes one JSON with everything and the hardware: $OUT/gpu_check_<gpu>_<date>.json
# (OUT defaults to logs/bench), plus the per-config JSON beside it.
#
#   bash bench/gpu_check.sh            # from the repository root, sslnb importable
# A dry run of the plumbing on a CPU (tiny sizes, nothing meaningful measured):
#   DEVICE=cpu OUT=/tmp/gc BENCH_SET="--set train.batch_size=4 --set data.image_size=32" \
#     DEMO_SET="--set train.epochs=1 --set data.num_train=512 --set eval.probe_epochs=2" \
#     STEPS=2 FT_EPOCHS=0 bash bench/gpu_check.sh
set -euo pipefail
PY=${PY:-python}
OUT=${OUT:-logs/bench}
DEVICE=${DEVICE:-cuda}
STEPS=${STEPS:-30}
BENCH_SET=${BENCH_SET:-}
DEMO_SET=${DEMO_SET:-}
WORK=$(mktemp -d)
mkdir -p "$OUT/gpu_check_parts"
export SSLNB_PROGRESS=0 SSLNB_CACHE="$WORK/cache"
start=$(date +%s)
# Every full-scale configuration (a new method's params/imagenet100/*.yaml joins by itself), then
# ViT-B compiled.
specs=()
for f in params/imagenet100/*.yaml; do specs+=("${f#params/}"); done
specs+=("imagenet100/mae_vit_b.yaml --set train.compile=true --set name=imagenet100_mae_vit_b_compiled")
for spec in "${specs[@]}"; do
  echo "[gpu_check] bench $spec"
  $PY -m sslnb bench --params params/$spec --set device=$DEVICE $BENCH_SET --steps $STEPS \
    --warmup $(( STEPS < 8 ? 1 : 8 )) --out-dir "$OUT/gpu_check_parts" \
    > "$WORK/last.log" 2>&1 || { tail -20 "$WORK/last.log"; echo "[gpu_check] failed: $spec"; }
done
# Every demo configuration (a new method's params/demo/*.yaml joins by itself), pretrained and
# evaluated with FT_EPOCHS of fine-tuning at every depth, so the check times fine-tuning too.
FT_EPOCHS=${FT_EPOCHS:-1}
for f in params/demo/*.yaml; do
  run=$(basename "$f" .yaml)
  echo "[gpu_check] demo $run: pretrain + evaluate (fine-tuning included) on the GPU"
  t0=$(date +%s)
  $PY -m sslnb pretrain --params "$f" --set out_dir="$WORK/logs" --set device=$DEVICE \
      --set eval.finetune_epochs=$FT_EPOCHS $DEMO_SET > "$WORK/$run.log" 2>&1 \
      || tail -20 "$WORK/$run.log"
  t1=$(date +%s)
  $PY -m sslnb evaluate --run "$WORK/logs/$run" > "$WORK/$run.eval.json" 2>>"$WORK/$run.log" \
      || tail -20 "$WORK/$run.log"
  t2=$(date +%s)
  echo "{\"run\": \"$run\", \"pretrain_s\": $((t1 - t0)), \"evaluate_s\": $((t2 - t1))}" > "$WORK/$run.time.json"
  cp "$WORK/logs/$run/summary.json" "$WORK/$run.summary.json" 2>/dev/null || true
done
$PY - "$OUT" "$WORK" "$start" <<'PY'
import datetime, json, platform, subprocess, sys, time
from pathlib import Path
import torch
out, work, start = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
try:
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,power.limit",
                          "--format=csv,noheader"], capture_output=True, text=True).stdout.strip()
except OSError:
    smi = None
demo = {}
for run in sorted(f.name[:-len(".time.json")] for f in work.glob("*.time.json")):
    entry = {}
    for part in ("time", "summary", "eval"):
        f = work / f"{run}.{part}.json"
        try:
            entry[part] = json.loads(f.read_text())
        except (OSError, ValueError):
            entry[part] = None
    demo[run] = entry
report = {
    "benchmark": "gpu_check", "date": datetime.date.today().isoformat(), "gpu": gpu,
    "nvidia_smi": smi, "torch": torch.__version__, "cuda": torch.version.cuda,
    "cpu_count": __import__("os").cpu_count(), "platform": platform.platform(),
    "steps": [json.loads(f.read_text()) for f in sorted((out / "gpu_check_parts").glob("*.json"))],
    "demo": demo, "wall_s": int(time.time()) - start,
}
slug = "".join(c if c.isalnum() else "-" for c in gpu.lower()).strip("-")
path = out / f"gpu_check_{slug}_{report['date']}.json"
path.write_text(json.dumps(report, indent=2) + "\n")
print(f"[gpu_check] {path} ({report['wall_s']} s)")
PY
rm -rf "$WORK"
