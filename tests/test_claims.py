"""The claims' verdicts on constructed numbers (each word, each check, pairing, the family), the
registered primaries' validation, and the data-scale runs as the reports define them."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sslnb.data import fraction_rows, load_split
from sslnb.errors import ParamsError
from sslnb.params import flatten, resolve
from sslnb.report import claims, load, records
from sslnb.report.contrasts import contrast
from sslnb.report.records import Configuration
from sslnb.report.primaries import registered
from sslnb.train import Schedule
from sslnb.verdicts import WORDS, Primary

from conftest import ROOT, run_record

N = 2000


def seeded(accuracies, seed: int, n_images: int = N) -> np.ndarray:
    """(seeds, images) correctness, seed i exactly accuracies[i] right, in a seeded order."""
    rng = np.random.default_rng(seed)
    rows = []
    for acc in accuracies:
        c = np.zeros(n_images, dtype=bool)
        c[:round(acc * n_images)] = True
        rows.append(rng.permutation(c))
    return np.stack(rows)


def group(name: str, method: str, probe, arch: str = "ViT", seed: int = 0, steps: int = 100,
          flops: float = 1e9, images: int = 10000, val=(40.0, 20.0), gains=None,
          correct: dict | None = None) -> Configuration:
    """A configuration as summary.load makes it: `probe` one accuracy per seed, per-seed runs
    with their val numbers (probe, random-init twin's probe, fine-tuning per depth)."""
    probe = [probe] if np.isscalar(probe) else list(probe)
    n = len(probe)
    c = {"pretrained/probe": seeded(probe, seed)} if correct is None else correct
    params = resolve(None, {"method": method, "train.batch_size": 32})
    runs = [run_record(seed=i, val_top1=val[0], random_val_top1=val[1], params=params,
                       finetune_val={"0": 30.0, "1": 30.0 + (gains[i] if gains else 1.0)})
            for i in range(n)]
    return Configuration(
        group=name, model=f"{method} {arch}", method=method, source="shapes",
        encoder="vit_tiny_patch16_224", architecture=arch, device="cpu", params_file="", n=n,
        seeds=list(range(n)), test_set="same images",
        mean={"pretrain_images": images, "steps": steps, "train_flops": flops * steps,
              "train_flops_per_image": flops}, sd={}, ci={}, labels=np.zeros(N), correct=c,
        runs=runs, params=params)


def primary(claim="probe", a="sim", b="mae", metric="probe", budget="steps", direction=1):
    return Primary(claim, a, b, metric, budget, direction)


def decide(groups, *primaries, readings=None) -> dict:
    """{claim: result} for the registered primaries."""
    return {r.claim: r for r in claims.evaluate_claims(groups, list(primaries), readings)}


def shared_pair(diff: float, n: int = 6, flip: float = 0.0, sd: float = 0.01, seed: int = 0,
                jitter: float = 0.005):
    """SimCLR and MAE on one encoder with shared seeds: each seed's effect (sd) is common to
    both arms (the paired analysis removes it); SimCLR's images differ from MAE's in a fraction
    `flip` of them, and its accuracy by `diff` plus a seed's own `jitter`."""
    rng = np.random.default_rng(seed)
    base = 0.5 + rng.normal(0, sd, n)
    own = rng.normal(0, jitter, n)
    mae = seeded(base, seed)
    sim = mae.copy()
    out = rng.random(mae.shape) < flip  # images whose answer is redrawn
    sim[out] = rng.random(out.sum()) < 0.5
    for i in range(n):  # then move SimCLR's accuracy by diff, image by image
        k = round((base[i] + diff + own[i] - sim[i].mean()) * N)
        idx = np.flatnonzero(~sim[i] if k > 0 else sim[i])[:abs(k)]
        sim[i, idx] = k > 0
    return (group("sim", "simclr", list(sim.mean(1)), correct={"pretrained/probe": sim}),
            group("mae", "mae", list(mae.mean(1)), correct={"pretrained/probe": mae}))


@pytest.mark.parametrize("diff, flip, n, want", [
    (0.05, 0.2, 6, "supported"),       # +5 points, paired: the adjusted interval excludes 0
    (-0.05, 0.2, 6, "contradicted"),   # against the claim
    (0.0, 0.02, 6, "equivalent"),      # nearly the same answers: inside +-2 at 90%
])
def test_each_verdict_word(diff, flip, n, want):
    sim, mae = shared_pair(diff, n, flip)
    r = decide([sim, mae], primary())["probe"]
    assert r.verdict == want, r.sentence
    assert r.sentence.lower().startswith(want)
    assert r.mde > 0 and r.power.n == n and r.power.paired


def test_inconclusive_states_what_the_design_could_detect():
    """Two seeds whose differences disagree (+3 and -4 points): the interval contains 0 and
    reaches past +-2, and the verdict says how large an effect this design would detect."""
    sim = group("sim", "simclr", [0.53, 0.46], seed=1)
    mae = group("mae", "mae", [0.50, 0.50], seed=2)
    r = decide([sim, mae], primary())["probe"]
    assert r.verdict == "inconclusive", r.sentence
    assert f"detects {r.mde:.1f} points with 80% power" in r.sentence
    assert r.mde > 10  # one degree of freedom
    assert "no detectable difference" not in r.sentence.lower()


def test_a_failed_check_makes_the_test_invalid_with_its_numbers():
    sim, mae = shared_pair(0.05)
    for run in mae.runs:
        run.val_top1, run.random_val_top1 = 19.0, 20.0  # no better than random init on val
    r = decide([sim, mae], primary())["probe"]
    assert r.verdict == "invalid test"
    assert "mae ViT did not learn at this budget" in r.sentence and "-1.0 points" in r.sentence
    assert [c.passed for c in r.checks] == [True, False]
    assert r.family == 0  # an invalid primary leaves the Holm family


def test_finetuning_that_lowers_the_probe_invalidates_claim_2():
    k1 = "pretrained/finetune_k1"
    c = lambda s, acc: {"pretrained/probe": seeded([0.5] * 3, s),  # noqa: E731
                        "pretrained/finetune_k0": seeded([0.5] * 3, s + 1),
                        k1: seeded([acc] * 3, s + 2)}
    mae = group("mae", "mae", [0.5] * 3, correct=c(0, 0.55), gains=[1.0, 0.5, 2.0])
    sim = group("sim", "simclr", [0.5] * 3, correct=c(10, 0.52), gains=[-3.0, -2.0, -4.0])
    p = primary("finetune", "mae", "sim", "finetune_gain_k1")
    r = decide([mae, sim], p)["finetune"]
    assert r.verdict == "invalid test"
    assert "fine-tuning does not raise the probe it starts from at this size" in r.sentence
    assert "simclr ViT: fine-tuned minus its starting probe -3.0 points on val" in r.sentence
    for run in sim.runs:
        run.finetune_val["1"] = 31.0
    r = decide([mae, sim], p)["finetune"]
    assert r.verdict != "invalid test" and r.deciding.value == pytest.approx(3.0, abs=0.01)


@pytest.mark.parametrize("change, why", [
    (dict(arch="ResNet-18"), "differs in encoder"),
    (dict(images=2500), "differs in pretraining set"),
    (dict(steps=200), "the budgets differ"),
])
def test_a_pair_that_differs_in_more_than_the_claims_factor_is_not_tested(change, why):
    sim = group("sim", "simclr", [0.6, 0.61, 0.62], seed=1, **change)
    mae = group("mae", "mae", [0.5, 0.51, 0.52], seed=2)
    r = decide([sim, mae], primary())["probe"]
    assert r.verdict == "not tested" and why in r.sentence


def test_flops_budget_needs_a_run_trained_to_the_other_ones_flops():
    sim = group("sim", "simclr", [0.6, 0.61], steps=100, flops=6e9)
    mae = group("mae", "mae", [0.5, 0.51], steps=500, flops=1e9)
    p = primary("efficiency", "mae", "sim", budget="flops")
    assert decide([sim, mae], p)["efficiency"].verdict == "not tested"
    sim.mean["train_flops"] = 1.02 * mae.mean["train_flops"]  # within 5%
    assert decide([sim, mae], p)["efficiency"].verdict in WORDS[:4]


def test_a_claim_without_a_primary_is_not_tested_and_readings_decide_nothing():
    sim, mae = shared_pair(0.05)
    results = claims.evaluate_claims([sim, mae], (), {"probe": [("sim", "mae")]})
    assert [r.verdict for r in results] == ["not tested"] * 4
    probe = results[0]
    assert probe.lines and all("decides nothing" in line for line in probe.lines)


def test_readings_read_only_the_pairs_the_report_names():
    """No pair is found by what a method calls its objective: a report that names none shows
    none, and a named pair is read a - b as named."""
    sim, mae = shared_pair(0.05)
    assert not any(r.lines for r in claims.evaluate_claims([sim, mae]))
    named = claims.evaluate_claims([sim, mae], (), {"probe": [("mae", "sim")]})[0]
    assert named.lines[0].startswith("mae ViT - simclr ViT")


def test_the_primary_is_not_repeated_among_the_readings():
    sim, mae = shared_pair(0.05)
    r = decide([sim, mae], primary(), readings={"probe": [("sim", "mae")]})["probe"]
    assert not any("each at the end of its pretraining" in line for line in r.lines)
    other = decide([sim, mae], readings={"probe": [("sim", "mae")]})["probe"]
    assert any("each at the end of its pretraining" in line for line in other.lines)


def test_paired_seeds_are_analysed_paired_and_cross_encoder_unpaired():
    """Shared seed effects (sd 3 points, common to both arms) cancel in the paired difference;
    the same numbers on different encoders cannot be paired, and their interval is wider."""
    sim, mae = shared_pair(0.03, n=6, flip=0.2, sd=0.03)
    paired = decide([sim, mae], primary())["probe"]
    assert paired.power.paired
    other = dataclasses.replace(sim, architecture="ResNet-18")
    d_paired = contrast(sim, mae, "probe")
    d_unpaired = contrast(other, mae, "probe")
    assert d_unpaired.high - d_unpaired.low > 2 * (d_paired.high - d_paired.low)
    # one seed part, the n - 1 df of the per-seed differences (the images' part has inf df)
    assert [df for _, df in d_paired.parts if df != float("inf")] == [5]
    assert sorted(df for _, df in d_unpaired.parts if df != float("inf")) == [5, 5]


def test_holm_family_adjusts_over_the_valid_primaries():
    sim, mae = shared_pair(0.05, flip=0.2)
    small = group("small", "mae", list(mae.correct["pretrained/probe"].mean(1)), images=500,
                  correct={"pretrained/probe": mae.correct["pretrained/probe"][:, ::-1]})
    out = decide([sim, mae, small], primary(),
                 primary("data", "mae", "small", "probe"))
    assert out["probe"].family == 2
    # Holm: the smaller p-value at 1 - 0.05/2, the other (not rejected) at 1 - 0.05
    assert out["probe"].deciding.level == pytest.approx(0.975)
    assert out["data"].deciding.level == pytest.approx(0.95)


def test_one_comparison_cannot_enter_the_family_twice():
    groups = {"sim", "mae"}
    twice = {"probe": {"a": "sim", "b": "mae", "metric": "probe", "budget": "steps"},
             "efficiency": {"a": "mae", "b": "sim", "metric": "probe", "budget": "steps",
                            "direction": -1}}
    with pytest.raises(ParamsError, match="register the same comparison"):
        registered(twice, groups, "r.yaml")
    with pytest.raises(ValueError):
        decide([], primary(), primary("efficiency", "mae", "sim", direction=-1))


@pytest.mark.parametrize("raw, message", [
    ({"speed": {}}, "unknown claim"),
    ({"probe": {"a": "sim", "b": "mae", "metric": "probe"}}, "must be a mapping with"),
    ({"probe": {"a": "sim", "b": "nope", "metric": "probe", "budget": "steps"}},
     "names 'nope', which is not a configuration"),
    ({"probe": {"a": "sim", "b": "mae", "metric": "accuracy", "budget": "steps"}},
     "accepted: probe, knn"),
    ({"probe": {"a": "sim", "b": "mae", "metric": "probe", "budget": "time"}},
     "accepted: steps"),
    ({"probe": {"a": "sim", "b": "mae", "metric": "probe", "budget": "steps", "delta": 0}},
     "positive number"),
])
def test_registered_primaries_are_checked_with_a_clear_error(raw, message):
    with pytest.raises(ParamsError, match=message) as e:
        registered(raw, {"sim", "mae"}, "params/report/x.yaml")
    assert "params/report/x.yaml: primaries." in str(e.value)


def test_the_claims_report_registers_one_primary_per_claim():
    spec = load(ROOT / "params" / "report" / "claims.yaml")
    assert [p.claim for p in spec.primaries] == list(claims.CLAIMS)
    seeds = {}
    for r in spec.runs:
        seeds.setdefault(r.group, []).append(r.seed)
    for p in spec.primaries:  # each primary's arms at the planned seeds, the same for both
        assert len(seeds[p.a]) >= 5 and seeds[p.a] == seeds[p.b], p


# The data-scale runs as the reports define them ------------------------------------------------
def _groups_of(report: str) -> list:
    """What records.sweeps reads of each configuration: its params and pretraining images."""
    spec = load(ROOT / "params" / "report" / f"{report}.yaml")
    params = [resolve(r.params, r.set) for r in spec.runs if r.seed in (0, None)]
    return [SimpleNamespace(params=p, steps=0,
                            pretrain_images=len(load_split(p["data"], "pretrain")))
            for p in params]


@pytest.mark.parametrize("report,swept", [("claims", 2), ("tiny", 2)])
def test_data_scale_runs_differ_only_in_the_pretraining_set_and_train_for_the_same_steps(
        report, swept):
    """Claim 3 is decided at equal optimizer steps: a smaller pretraining set gets the full
    set's steps and warm-up steps (counted on the images it really has), and differs from it in
    nothing else that pretraining reads."""
    found = records.sweeps(_groups_of(report))
    assert sum(len(s) for s in found) == swept  # and no other runs mistaken for a sweep
    for sweep in found:
        flat = [flatten(g.params) for g in sweep]
        for f in flat[1:]:
            differing = {k for k in f if f[k] != flat[0][k]}
            pretraining_set = {"data.pretrain_fraction", "data.pretrain_classes"}
            assert all(k in pretraining_set or k == "name" or k in records.SCHEDULE
                       or k.startswith("eval.finetune_") for k in differing), differing
            assert differing & pretraining_set
        schedules = {(s.total_steps, s.warmup_steps) for s in (
            Schedule.of(g.pretrain_images, g.params["train"], 1) for g in sweep)}
        assert len(schedules) == 1, schedules


def test_the_flops_matched_run_has_its_own_complete_schedule():
    """Claim 4's SimCLR arm is trained to MAE's training FLOPs (within 5%), its warm-up the same
    share of its schedule as MAE's, ending annealed (not a snapshot of a longer run)."""
    from sslnb import methods
    spec = load(ROOT / "params" / "report" / "claims.yaml")
    p = next(p for p in spec.primaries if p.claim == "efficiency")
    runs = {r.group: resolve(r.params, r.set) for r in spec.runs if r.seed == 0}
    cost, share = {}, {}
    for side in (p.a, p.b):
        q = runs[side]
        s = Schedule.of(len(load_split(q["data"], "pretrain")), q["train"], 1)
        cost[side] = methods.train_flops_per_image(q) * s.total_steps * s.images_per_step
        share[side] = s.warmup_steps / s.total_steps
    assert abs(cost[p.b] / cost[p.a] - 1) < claims.FLOPS_TOLERANCE
    assert share[p.b] == pytest.approx(share[p.a], abs=0.01)


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
