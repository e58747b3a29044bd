"""The claims' verdicts on constructed numbers, and the data-scale runs as the reports define them."""
import numpy as np
import pytest
import torch

from sslnb.data import fraction_rows, load_split
from sslnb.params import flatten, resolve
from sslnb.report import claims, load
from sslnb.stats import Interval
from sslnb.train import Schedule

from conftest import ROOT

N = 2000


def correct(accuracy: float, seed: int) -> np.ndarray:
    """N test images, exactly `accuracy` of them right, in a seeded order."""
    c = np.zeros(N, dtype=bool)
    c[:round(accuracy * N)] = True
    return np.random.default_rng(seed).permutation(c)[None]


def group(method: str, arch: str, probe: float, finetune: float | None = None, seed: int = 0,
          epoch_time: float = 10.0, flops: float | None = None, start: float | None = None,
          **depths: float) -> dict:
    """A configuration as compare.summarise makes it: test correctness per evaluator, and a
    curve across pretraining whose last point (100 steps) is the pretrained encoder. `start` is
    the probe fine-tuning started from (depth 0); depths k1=..., k2=... its partial fine-tunings."""
    c = {"pretrained/probe": correct(probe, seed)}
    if finetune is not None:
        c["pretrained/finetune"] = correct(finetune, seed + 100)
    if start is not None:
        c["pretrained/finetune_k0"] = correct(start, seed + 200)
    for i, (k, acc) in enumerate(depths.items()):
        c[f"pretrained/finetune_{k}"] = correct(acc, seed + 300 + i)
    per_image = flops if flops is not None else epoch_time * 1e9
    curve = [{"step": 0, "kind": "random_init", "train_flops": 0.0, "train_seconds": 0.0},
             {"step": 100, "kind": "pretrained", "train_flops": 100 * per_image,
              "train_seconds": 100 * epoch_time}]
    return {"method": method, "architecture": arch, "model": f"{method} {arch}", "correct": c,
            "labels": np.zeros(N), "params": resolve(None, {"method": method, "seed": seed}),
            "test_set": "same images", "runs": [{}], "curve": curve,
            "mean": {"isolated_epoch_time_s": epoch_time, "pretrain_images": 10000, "steps": 100,
                     "train_flops_per_image": per_image},
            "ci": {}}


def snapshot(g: dict, step: int, accuracy: float, seed: int) -> dict:
    """Add a kept snapshot at `step` (FLOPs and seconds in proportion) with its probe accuracy."""
    end = g["curve"][-1]
    g["curve"].insert(-1, {"step": step, "kind": f"step_{step}",
                           "train_flops": end["train_flops"] * step / end["step"],
                           "train_seconds": end["train_seconds"] * step / end["step"]})
    g["correct"][f"step_{step}/probe"] = correct(accuracy, seed)
    return g


def verdict_of(groups: list[dict], claim: str) -> dict:
    """The claim's result as the report states it (Holm-adjusted over the family)."""
    return next(r for r in claims.evaluate_claims(groups) if r["claim"] == claim)


def test_verdict_reads_the_interval():
    assert claims.verdict(Interval(5.0, 2.0, 8.0)) == claims.SUPPORTED
    assert claims.verdict(Interval(-5.0, -8.0, -2.0)) == claims.CONTRADICTED
    assert claims.verdict(Interval(1.0, -1.0, 3.0)) == claims.NO_DIFFERENCE
    assert claims.verdict(Interval(-5.0, -8.0, -2.0), claimed_sign=-1) == claims.SUPPORTED
    assert claims.combine([claims.SUPPORTED, claims.SUPPORTED]) == claims.SUPPORTED
    assert claims.combine([claims.SUPPORTED, claims.NO_DIFFERENCE]) == claims.MIXED
    assert claims.combine([]) == claims.NOT_TESTED


@pytest.mark.parametrize("simclr, mae, want", [
    (0.60, 0.45, claims.SUPPORTED), (0.40, 0.55, claims.CONTRADICTED),
    (0.50, 0.50, claims.NO_DIFFERENCE)])
def test_probe_claim_on_the_same_encoder(simclr, mae, want):
    groups = [group("mae", "ViT", mae, seed=1), group("simclr", "ViT", simclr, seed=2)]
    r = verdict_of(groups, "probe")
    assert r["verdict"] == want and not r["confounded"]
    assert len(r["lines"]) == 1 and "Holm-adjusted" in r["lines"][0]


def test_probe_claim_without_a_same_encoder_pair_is_not_tested():
    """SimCLR on a ResNet far ahead, but on the shared ViT MAE is ahead: contradicted. Without
    the shared ViT the pair changes objective and architecture together: not tested, the
    confounded difference shown and labelled."""
    groups = [group("mae", "ViT", 0.50, seed=1), group("simclr", "ViT", 0.35, seed=2),
              group("simclr", "ResNet", 0.80, seed=3)]
    assert verdict_of(groups, "probe")["verdict"] == claims.CONTRADICTED
    alone = verdict_of([groups[0], groups[2]], "probe")
    assert alone["verdict"] == claims.NOT_TESTED and alone["confounded"]
    assert "objective and encoder both differ" in alone["lines"][0]
    text = claims.markdown([alone])
    assert "Verdict: not tested" in text and claims.WHY_NOT_TESTED in text


def test_each_verdict_says_what_it_was_decided_on():
    """The data, each configuration's steps and batch, and the seeds, in the Claims section; the
    models, steps and seeds in the abstract's short form; nothing for an untested claim."""
    groups = [group("mae", "ViT", 0.45, seed=1), group("simclr", "ViT", 0.60, seed=2)]
    for g in groups:
        g["n"] = 3
    r = verdict_of(groups, "probe")
    assert r["scope"].startswith("Decided on 10,000 generated 32px images"), r["scope"]
    assert "mae ViT (100 steps of 256 images) and simclr ViT (100 steps of 256 images), 3 seeds " \
           "each." in r["scope"], r["scope"]
    assert r["short_scope"] == "mae ViT and simclr ViT, 100 steps, 3 seeds each"
    assert r["scope"] in claims.markdown([r])
    assert verdict_of(groups, "data")["scope"] == ""


def test_verdicts_read_the_holm_adjusted_intervals():
    """SimCLR 3.5 points ahead on the same ViT: alone that interval excludes 0 (p ~ 0.03), but it
    is one of a family of three deciding differences (with claim 4's two readings), and Holm
    at 0.05/3 does not reject it: no detectable difference, the line showing the adjusted level."""
    groups = [group("mae", "ViT", 0.500, seed=1, epoch_time=5),
              group("simclr", "ViT", 0.535, seed=2, epoch_time=20)]
    raw = claims.probe_claim(groups)["entries"][0]["interval"]
    assert raw.excludes_zero and 0.0167 < raw.p_value < 0.05
    r = verdict_of(groups, "probe")
    assert r["family"] == 3 and r["verdict"] == claims.NO_DIFFERENCE
    assert "98.3% CI" in r["lines"][0] and "Holm-adjusted" in r["lines"][0]
    assert r["deciding"][0]["p_unadjusted"] == pytest.approx(raw.p_value)


@pytest.mark.parametrize("mae_ft, sim_ft, want", [
    (0.70, 0.52, claims.SUPPORTED),      # MAE +20, SimCLR +2
    (0.52, 0.70, claims.CONTRADICTED),   # MAE +2, SimCLR +20
    (0.60, 0.60, claims.NO_DIFFERENCE)])  # both +10
def test_finetune_claim_is_a_difference_of_gains(mae_ft, sim_ft, want):
    """Each gain is measured from the probe fine-tuning started from, on the same labelled
    images (depth 0); without that probe a gain compares different label sets: shown, no verdict."""
    groups = [group("mae", "ViT", 0.45, mae_ft, seed=1, start=0.50),
              group("simclr", "ViT", 0.55, sim_ft, seed=2, start=0.50)]
    assert verdict_of(groups, "finetune")["verdict"] == want
    unequal_labels = [group("mae", "ViT", 0.50, mae_ft, seed=1),
                      group("simclr", "ViT", 0.50, sim_ft, seed=2)]
    r = verdict_of(unequal_labels, "finetune")
    assert r["verdict"] == claims.NOT_TESTED and not r["deciding"]
    assert all("different labelled images" in line for line in r["lines"])


def test_finetune_depths_that_disagree_give_mixed():
    """MAE gains 20 points from its last block and 5 end to end; SimCLR 2 and 20: supported at
    one depth, contradicted at the other, so mixed, every depth stated."""
    groups = [group("mae", "ViT", 0.50, 0.55, seed=1, start=0.50, k1=0.70),
              group("simclr", "ViT", 0.50, 0.70, seed=2, start=0.50, k1=0.52)]
    r = verdict_of(groups, "finetune")
    assert r["verdict"] == claims.MIXED and len(r["deciding"]) == 2
    assert any("last 1 block" in d["text"] for d in r["deciding"])
    assert any("all blocks" in d["text"] for d in r["deciding"])
    agree = [group("mae", "ViT", 0.50, 0.70, seed=1, start=0.50, k1=0.68),
             group("simclr", "ViT", 0.50, 0.52, seed=2, start=0.50, k1=0.51)]
    assert verdict_of(agree, "finetune")["verdict"] == claims.SUPPORTED


def test_probe_claim_whose_sign_changes_with_the_budget_depends_on_it():
    """Equal steps, SimCLR 3x MAE's FLOPs per step: at the end SimCLR leads by 10 points (equal
    steps and equal time: one reading), but read at MAE's FLOPs (SimCLR's snapshot at step 30,
    90% of them) it trails by 10: depends on budget, each reading with the snapshot it used."""
    mae = group("mae", "ViT", 0.50, seed=1, flops=1e9, epoch_time=10)
    sim = snapshot(group("simclr", "ViT", 0.60, seed=2, flops=3e9, epoch_time=10), 30, 0.40, 3)
    r = verdict_of([mae, sim], "probe")
    assert r["verdict"] == claims.DEPENDS and len(r["deciding"]) == 2
    texts = [d["text"] for d in r["deciding"]]
    assert any("optimizer steps and pretraining time" in t for t in texts)
    assert any("training FLOPs" in t and "step 30" in t for t in texts)
    assert "Verdict: depends on budget" in claims.markdown([r])
    both_ahead = snapshot(group("simclr", "ViT", 0.60, seed=2, flops=3e9, epoch_time=10), 30,
                          0.58, 3)
    assert verdict_of([mae, both_ahead], "probe")["verdict"] == claims.SUPPORTED


def test_a_budget_without_a_near_snapshot_is_not_read():
    """SimCLR's only snapshot before its end holds 30% of MAE's FLOPs: the FLOPs reading would be
    extrapolated, so it is listed as not read and the verdict rests on the readings matched."""
    mae = group("mae", "ViT", 0.50, seed=1, flops=1e9, epoch_time=10)
    sim = snapshot(group("simclr", "ViT", 0.60, seed=2, flops=3e9, epoch_time=10), 10, 0.20, 3)
    r = verdict_of([mae, sim], "probe")
    assert r["verdict"] == claims.SUPPORTED and len(r["deciding"]) == 1
    assert any("training FLOPs: not read (simclr ViT kept no snapshot between 0.08 TFLOP and 0.1 "
               "TFLOP" in line for line in r["lines"]), r["lines"]
    sim["mean"]["epochs_contended"] = 1  # a clock that shared its cores is never read
    assert any("pretraining time: not read" in line for line in
               verdict_of([mae, sim], "probe")["lines"])


def sweep_group(method: str, images: int, epochs: int, probe: float, seed: int) -> dict:
    g = group(method, "ViT", probe, seed=seed)
    g["params"] = resolve(None, {"method": method, "train.epochs": epochs,
                                 "data.pretrain_fraction": images / 10000})
    g["mean"].update(pretrain_images=images, steps=images * epochs // 100)
    return g


def test_data_claim_decides_at_equal_steps_only():
    """The full set (10 epochs) against a quarter run 40 epochs (equal steps) decides; the quarter
    run 10 epochs (a quarter of the steps) is shown, labelled, and decides nothing, however large
    its difference."""
    full = sweep_group("mae", 10000, 10, 0.50, 1)
    equal_steps = sweep_group("mae", 2500, 40, 0.49, 2)
    same_epochs = sweep_group("mae", 2500, 10, 0.30, 3)
    r = verdict_of([full, equal_steps, same_epochs], "data")
    assert r["verdict"] == claims.NO_DIFFERENCE and len(r["deciding"]) == 1
    assert "both 1,000 steps" in r["deciding"][0]["text"]
    assert any("1,000 vs 250 steps" in line and "decides nothing" in line for line in r["lines"])
    assert verdict_of([full, same_epochs], "data")["verdict"] == claims.NOT_TESTED
    assert claims.main_groups([full, equal_steps, same_epochs]) == [full]


def test_efficiency_trade_off():
    """MAE cheaper per epoch and SimCLR more accurate: a trade-off (supported); MAE cheaper and
    more accurate: no trade-off (contradicted)."""
    trade = [group("mae", "ViT", 0.40, seed=1, epoch_time=5),
             group("simclr", "ViT", 0.60, seed=2, epoch_time=20)]
    assert verdict_of(trade, "efficiency")["verdict"] == claims.SUPPORTED
    dominated = [group("mae", "ViT", 0.60, seed=1, epoch_time=5),
                 group("simclr", "ViT", 0.40, seed=2, epoch_time=20)]
    assert verdict_of(dominated, "efficiency")["verdict"] == claims.CONTRADICTED


def test_efficiency_reads_flops_and_isolated_time_never_a_contended_clock():
    """MAE fewer FLOPs but slower alone: the two readings disagree on which is cheaper, so the
    verdict is mixed; with no isolated clock only FLOPs decide."""
    split = [group("mae", "ViT", 0.40, seed=1, epoch_time=30, flops=1e9),
             group("simclr", "ViT", 0.60, seed=2, epoch_time=20, flops=4e9)]
    r = verdict_of(split, "efficiency")
    assert r["verdict"] == claims.MIXED and len(r["deciding"]) == 2
    assert any("FLOPs" in line for line in r["lines"]) and any("isolated" in line for line in r["lines"])
    for g in split:
        del g["mean"]["isolated_epoch_time_s"]  # every epoch shared its cores
    r = verdict_of(split, "efficiency")
    assert r["verdict"] == claims.SUPPORTED and len(r["deciding"]) == 1
    same = [group("mae", "ViT", 0.40, seed=1, epoch_time=30, flops=1.00e9),
            group("simclr", "ViT", 0.60, seed=2, epoch_time=45, flops=1.02e9)]
    r = verdict_of(same, "efficiency")  # equal FLOPs name no cheaper method: time decides
    assert r["verdict"] == claims.SUPPORTED and len(r["deciding"]) == 1
    assert any("about the same" in line and "decides nothing" in line for line in r["lines"])


def test_untested_claims_say_so():
    results = claims.evaluate_claims([group("mae", "ViT", 0.5)])
    assert [r["verdict"] for r in results] == [claims.NOT_TESTED] * 4
    assert not claims.any_tested(results)


@pytest.mark.parametrize("report,swept", [("claims", 4), ("imagenet100_claims", 6)])
def test_data_scale_runs_differ_only_in_the_pretraining_set(report, swept):
    spec = load(ROOT / "params" / "report" / f"{report}.yaml")
    params = [p for p in (resolve(r["params"], r["set"]) for r in spec["runs"]) if p["seed"] == 0]
    groups = [{"params": p, "mean": {"pretrain_images": i}} for i, p in enumerate(params)]
    found = claims.sweeps(groups)
    assert len(found) == 2  # one per method swept
    for sweep in found:
        flat = [flatten(g["params"]) for g in sweep]
        for f in flat[1:]:
            differing = {k for k in f if f[k] != flat[0][k]}
            pretraining_set = {"data.pretrain_fraction", "data.pretrain_classes"}
            # besides the set: only the run's name, its length (a smaller set may run more
            # epochs for the same steps) and whether (and how) it is fine-tuned
            assert all(k in pretraining_set or k == "name" or k in claims.SCHEDULE
                       or k.startswith("eval.finetune_") for k in differing), differing
            assert differing & pretraining_set
    # and the other runs are not mistaken for a sweep
    assert sum(len(s) for s in found) == swept


def test_the_claims_sweep_trains_every_set_for_the_same_steps():
    """Claim 3 is decided at equal optimizer steps: each smaller pretraining set of the claims
    report gets the full set's steps and warm-up steps (counted on the images it really has)."""
    spec = load(ROOT / "params" / "report" / "claims.yaml")
    params = [resolve(r["params"], r["set"]) for r in spec["runs"]]
    groups = [{"params": p, "mean": {"pretrain_images": len(load_split(p["data"], "pretrain"))}}
              for p in params]
    found = claims.sweeps(groups)
    assert len(found) == 2 and all(len({g["mean"]["pretrain_images"] for g in s}) == 2
                                   for s in found)
    for sweep in found:
        schedules = {(s.total_steps, s.warmup_steps) for s in (
            Schedule.of(g["mean"]["pretrain_images"], g["params"]["train"], 1) for g in sweep)}
        assert len(schedules) == 1, schedules


def test_a_pretraining_fraction_is_a_stratified_nested_subset():
    labels = torch.arange(10).repeat_interleave(100)
    quarter, half = fraction_rows(labels, 0.25, 0), fraction_rows(labels, 0.5, 0)
    assert set(quarter.tolist()) < set(half.tolist())
    assert torch.bincount(labels[quarter]).tolist() == [25] * 10
    assert torch.equal(quarter, fraction_rows(labels, 0.25, 0))
    assert not torch.equal(quarter, fraction_rows(labels, 0.25, 1))
    p = resolve(None, {"data.num_train": 200, "data.pretrain_fraction": 0.5})
    pre, train = load_split(p["data"], "pretrain"), load_split(p["data"], "train")
    assert len(pre) == 100 and len(train) == 200  # the probe still trains on every image
