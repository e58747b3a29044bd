"""Command line: python -m sslnb {run,pretrain,evaluate,choose,report,bench,export,info} ...  (also under torchrun)."""
from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import ParamsError, SslnbError


def _params_args(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--params", required=True, help="a run's YAML params file (see params/)")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one param, e.g. --set train.epochs=2 (repeatable)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m sslnb", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("run", help="pretrain and evaluate one run (each stage reused when "
                        "nothing changed)")
    _params_args(sp)
    sp.add_argument("--force", action="store_true", help="retrain and re-evaluate")
    sp.add_argument("--device", default=None)
    sp = sub.add_parser("pretrain", help="self-supervised pretraining of one run")
    _params_args(sp)
    sp.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    sp.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    sp.add_argument("--stop-after-steps", type=int, default=None,
                    help="checkpoint and stop after N steps (resume later with --resume)")
    sp = sub.add_parser("evaluate", help="linear probe, kNN and fine-tuning vs random init")
    sp.add_argument("--run", required=True, help="a run directory, e.g. logs/mae_vit_tiny")
    sp.add_argument("--device", default=None)
    sp.add_argument("--force", action="store_true", help="recompute even if inputs are unchanged")
    sp = sub.add_parser("choose", help="pick a setting on val (never test): a probe setting of a "
                        "run, or a pretraining setting (one candidate run per value)")
    which = sp.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="a run directory, for a probe setting (eval.probe_*) or a "
                       "fine-tuning recipe (eval.finetune_*, a grid when several --key)")
    which.add_argument("--params", help="a run's params file, for a pretraining setting")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="with --params: override a param of every candidate")
    sp.add_argument("--key", required=True, action="append",
                    help="e.g. eval.probe_base_lr (with --run) or train.base_lr (with --params); "
                         "with --params, repeat --key and --values for a grid of every combination")
    sp.add_argument("--values", required=True, nargs="+", action="append",
                    help="values to try, e.g. 0.03 0.1 0.3")
    sp = sub.add_parser("report", help="run the notebooks with papermill and render report/")
    sp.add_argument("--params", required=True, help="a report params file, e.g. params/report/demo.yaml")
    sp.add_argument("--force", action="store_true", help="rerun everything, reuse nothing")
    sp.add_argument("--render", action="store_true",
                    help="only re-render the comparison from the runs' saved logs (no training)")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a param of every run, e.g. --set data.root=/data/imagenet100")
    sp.add_argument("--report-dir", default=None)
    sp.add_argument("--graphs-dir", default=None)
    sp = sub.add_parser("bench", help="training-step speed, breakdown and FLOP utilisation (CPU: the bench/ scripts)")
    sp.add_argument("--params", default=None, help="a run's params (omit on a CPU to run bench/*.py)")
    sp.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    sp.add_argument("--steps", type=int, default=20)
    sp.add_argument("--warmup", type=int, default=5)
    sp.add_argument("--out-dir", default=None, help="where the JSON goes (default logs/bench)")
    sp = sub.add_parser("export", help="write a run's encoder as a plain timm/torchvision state dict")
    sp.add_argument("--run", required=True, help="a run directory, e.g. logs/mae_vit_tiny")
    sp.add_argument("--out", required=True, help="the file to write: FILE.safetensors (or FILE.pt); "
                    "FILE.json beside it says how to load it")
    sp = sub.add_parser("info", help="print the sizes of a configuration as JSON")
    _params_args(sp)
    return ap


def torch_dist_errors() -> tuple:
    import torch.distributed as dist
    errors = tuple(e for e in (getattr(dist, "DistError", None),
                               getattr(dist, "DistBackendError", None)) if e is not None)
    return errors or (RuntimeError,)


def main(argv: list[str] | None = None) -> int:
    # Each command imports its own stack when it runs (deferred imports, on purpose): `--help`,
    # `info` and a mistyped flag answer without loading the training loop, papermill or nbconvert.
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            from .pipeline import run
            result = run(args.params, args.overrides, force=args.force, device=args.device)
            print(json.dumps({"run_dir": str(result.run_dir),
                              **{k: v for k, v in result.evaluation.items() if k != "inputs"}},
                             indent=2))
        elif args.command == "pretrain":
            from .train import pretrain
            run = pretrain(args.params, args.overrides, resume=args.resume,
                           overwrite=args.overwrite, stop_after_steps=args.stop_after_steps)
            print(run)
        elif args.command in ("evaluate", "report", "export", "bench") and \
                int(os.environ.get("RANK", "0")) > 0:
            print(f"rank {os.environ['RANK']}: '{args.command}' runs on rank 0 only")
        elif args.command == "evaluate":
            from .evaluate import evaluate
            result = evaluate(args.run, args.device, args.force)
            result.pop("inputs", None)
            print(json.dumps(result, indent=2))
        elif args.command == "choose":
            import yaml
            from .choose import (FINETUNE_KEYS, finetune_setting, pretrain_setting,
                                 probe_setting)
            values = [[yaml.safe_load(v) for v in vs] for vs in args.values]
            tuning = args.run and all(k.removeprefix("eval.") in FINETUNE_KEYS for k in args.key)
            if len(args.key) != len(values) or (args.run and not tuning and len(args.key) > 1):
                raise ParamsError("choose: give one --values list per --key (several keys, a "
                                  "grid, only with --params or fine-tuning keys)")
            if tuning:  # one key or several (a grid) alike
                result = finetune_setting(args.run, args.key, values)
            elif args.run:
                result = probe_setting(args.run, args.key[0], values[0])
            else:
                result = pretrain_setting(args.params, args.key, values, args.overrides)
            print(json.dumps(result, indent=2))
        elif args.command == "report":
            import time
            from . import report
            start = time.perf_counter()
            kw = {k: v for k, v in (("report_dir", args.report_dir),
                                    ("graphs_dir", args.graphs_dir)) if v}
            from .params import parse_override
            overrides = dict(parse_override(o) for o in args.overrides)
            html = report.build(args.params, args.force, overrides=overrides, render=args.render,
                                **kw)
            print(f"[report] {html} built in {time.perf_counter() - start:.0f} s")
        elif args.command == "bench":
            from . import bench
            for path in bench.main(args.params, args.overrides, args.steps, args.warmup,
                                   args.out_dir):
                print(f"[bench] {path}")
        elif args.command == "export":
            from .export import export
            out = export(args.run, args.out)
            print(json.loads(out.with_name(out.name + ".json").read_text())["load"])
        elif args.command == "info":
            from .methods import describe
            from .params import resolve
            print(json.dumps(describe(resolve(args.params, args.overrides))))
    except SslnbError as e:
        print(f"sslnb: error: {e}", file=sys.stderr)
        return 2
    except torch_dist_errors() as e:  # a peer process died or a collective timed out
        print(f"sslnb: error: a process of this distributed run failed or stopped answering "
              f"({type(e).__name__}: {str(e).splitlines()[0][:200]}). Completed checkpoints are "
              f"kept: relaunch with --resume.", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("sslnb: interrupted; resume a pretraining run with --resume.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
