"""Every number with its uncertainty: the intervals (coverage over images and seeds, width,
pairing, multiplicity), the sentences they write, the three disjoint splits, the guard that keeps
choices off `test`, and the snapshots across pretraining."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sslnb import stats
from sslnb.data import choosing, content_hashes, layouts, load_split
from sslnb.errors import DataError, ParamsError
from sslnb.features import features
from sslnb.params import resolve
from sslnb.train import Schedule, pretrain, snapshot_steps


def synthetic_runs(rng, n_seeds: int, seed_sd: float, n_images: int = 2000, p: float = 0.6):
    """Correctness of n_seeds runs on n_images test images drawn from a population: each image
    has its own difficulty (the same for every seed: a Beta with mean p), each run its own
    seed effect (normal, seed_sd points), and each (run, image) a coin flip."""
    difficulty = rng.beta(3.0 * p / (1 - p), 3.0, size=n_images)
    shift = rng.normal(0.0, seed_sd / 100, size=(n_seeds, 1))
    return rng.random((n_seeds, n_images)) < np.clip(difficulty[None] + shift, 0, 1)


def population_accuracy(rng, seed_sd: float, p: float = 0.6, draws: int = 400_000) -> float:
    """The truth the intervals aim at: expected accuracy over images and seeds."""
    difficulty = rng.beta(3.0 * p / (1 - p), 3.0, size=draws)
    return 100 * float(np.clip(difficulty + rng.normal(0.0, seed_sd / 100, draws), 0, 1).mean())


@pytest.mark.parametrize("n_seeds,seed_sd", [(3, 1.0), (3, 2.5), (3, 4.0), (1, 0.0)])
def test_intervals_cover_the_truth_over_images_and_seeds(n_seeds, seed_sd):
    """At three seeds a bootstrap over seeds covered 89% (sd 2.5) and 83% (sd 4); the interval
    must cover >= 93% over 300 synthetic reports, and about 95% with one seed and no seed
    variance (where it is the plain interval over test images)."""
    rng = np.random.default_rng(int(10 * seed_sd) + n_seeds)
    truth = population_accuracy(rng, seed_sd)
    trials = 300
    covered = sum(ci.low <= truth <= ci.high for ci in (
        stats.accuracy_interval(synthetic_runs(rng, n_seeds, seed_sd)) for _ in range(trials)))
    assert covered / trials >= 0.93
    if n_seeds == 1:
        assert covered / trials <= 0.98  # not conservative where nothing needs it


@pytest.mark.parametrize("seed_sd", [1.0, 4.0])
def test_differences_between_models_cover_zero_when_they_are_equal(seed_sd):
    """Two models of the same population accuracy, each with its own 3 seeds: the difference's
    interval (each side's seeds on their own, images paired) contains 0 in >= 93% of reports."""
    rng = np.random.default_rng(7)
    trials, covered = 300, 0
    for _ in range(trials):
        difficulty = rng.beta(4.5, 3.0, size=2000)
        a, b = (rng.random((3, 2000)) < np.clip(difficulty + rng.normal(0, seed_sd / 100, (3, 1)), 0, 1)
                for _ in range(2))
        d = stats.difference_interval(a, b)
        covered += d.low <= 0 <= d.high
    assert covered / trials >= 0.93


def test_models_with_separate_seeds_are_not_paired_by_seed_index():
    """Seed 0 of one model and seed 0 of another share nothing: shuffling which seed is which
    within a model leaves the interval unchanged; paired seeds (a run and its twin) do not."""
    rng = np.random.default_rng(8)
    a, b = synthetic_runs(rng, 3, 3.0), synthetic_runs(rng, 3, 3.0)
    apart = stats.difference_interval(a, b)
    shuffled = stats.difference_interval(a, b[[2, 0, 1]])
    assert (apart.low, apart.high) == pytest.approx((shuffled.low, shuffled.high))
    twin = b.copy()
    twin[:, :100] = ~twin[:, :100]
    paired = stats.difference_interval(b, twin, paired_seeds=True)
    assert paired.high - paired.low < 0.5 * (apart.high - apart.low)


def test_unequal_seed_counts_weight_every_seed_once():
    """3 seeds against 2: each model's accuracy is its own seeds' mean (no seed counted twice),
    and the interval is defined."""
    rng = np.random.default_rng(9)
    a, b = synthetic_runs(rng, 3, 2.0), synthetic_runs(rng, 2, 2.0)
    d = stats.difference_interval(a, b)
    assert d.value == pytest.approx(100 * (a.mean() - b.mean()))
    assert d.low < d.value < d.high and np.isfinite([d.low, d.high]).all()
    with pytest.raises(ValueError, match="same .seeds, images. shape"):
        stats.contrast_interval([[(1.0, a), (-1.0, b)]])  # pairing seeds that are not the same


def test_interval_width_matches_the_binomial_one():
    rng = np.random.default_rng(2)
    for p, n in ((0.6, 2000), (0.15, 1000)):
        correct = rng.random(n) < p
        ci = stats.accuracy_interval(correct)
        phat = correct.mean()
        binomial = 2 * 1.959964 * math.sqrt(phat * (1 - phat) / n) * 100
        assert abs((ci.high - ci.low) / binomial - 1) < 0.02
        assert ci.low < ci.value < ci.high and ci.value == pytest.approx(100 * phat)


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    correct = np.random.default_rng(3).random(500) < 0.5
    d = stats.difference_interval(correct, correct.copy(), paired_seeds=True)
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero
    assert d.p_value == 1.0


def test_a_constructed_ten_point_difference_excludes_zero():
    rng = np.random.default_rng(4)
    b = rng.random(1000) < 0.5
    a = b.copy()
    a[np.flatnonzero(~b)[:100]] = True  # a is right on 100 more images: +10 points
    d = stats.difference_interval(a, b)
    assert d.value == pytest.approx(10.0) and d.excludes_zero and d.low < 10 < d.high
    # pairing over the same images is what makes the interval narrow
    assert d.high - d.low < 4
    assert d.p_value < 1e-6


def test_seeds_widen_the_interval_when_runs_disagree():
    rng = np.random.default_rng(5)
    same = np.stack([rng.random(1000) < 0.6] * 3)
    apart = np.stack([rng.random(1000) < p for p in (0.4, 0.6, 0.8)])
    w = lambda c: stats.accuracy_interval(c).high - stats.accuracy_interval(c).low  # noqa: E731
    assert w(apart) > 2 * w(same)


def test_holm_adjusts_a_family_step_down():
    """p-values read off the intervals; Holm compares the smallest with alpha/m, the next with
    alpha/(m-1), ... and stops at the first it cannot reject: adjusted intervals exclude 0 exactly
    for the rejected ones."""
    unit = ((1.0, math.inf),)  # se 1, normal
    family = [stats.Interval.of(v, unit) for v in (3.0, 2.3, 0.5, 2.1)]
    p = [iv.p_value for iv in family]
    assert p[0] == pytest.approx(0.0027, abs=2e-4) and p[2] == pytest.approx(0.617, abs=1e-3)
    adjusted = stats.holm(family)
    # ranks: 3.0 (alpha/4), 2.3 (alpha/3: p 0.021 > 0.0167, stop), 2.1 and 0.5 at alpha/3 too
    assert adjusted[0].excludes_zero and adjusted[0].level == pytest.approx(1 - 0.05 / 4)
    assert not adjusted[1].excludes_zero and adjusted[1].level == pytest.approx(1 - 0.05 / 3)
    assert not adjusted[3].excludes_zero and not adjusted[2].excludes_zero
    assert all(a.value == f.value for a, f in zip(adjusted, family))
    assert family[1].excludes_zero  # unadjusted it would have been called


def test_sentences_change_wording_when_the_interval_contains_zero():
    ahead = stats.compare("SimCLR", "MAE", stats.Interval(13.6, 11.2, 16.0))
    assert ahead == "SimCLR beats MAE by 13.6 points (95% CI 11.2 to 16.0)."
    behind = stats.compare("MAE", "SimCLR", stats.Interval(-13.6, -16.0, -11.2))
    assert behind == "SimCLR beats MAE by 13.6 points (95% CI 11.2 to 16.0)."
    below = stats.compare("BYOL", "its random-init twin", stats.Interval(-8.0, -10.7, -5.3))
    assert below == "BYOL falls behind its random-init twin by 8.0 points (95% CI 5.3 to 10.7)."
    tie = stats.compare("MAE", "SimCLR", stats.Interval(0.8, -1.1, 2.7))
    assert tie.startswith("MAE minus SimCLR") and "contains 0" in tie
    assert "no detectable difference" not in tie.lower()  # not a verdict: the design may not tell


def test_mean_sd_of_seeds():
    assert stats.mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    assert stats.mean_sd([4.0]) == (4.0, 0.0, 1)


def _shapes(**kw):
    return resolve(None, {"data.num_train": 300, "data.num_val": 100, "data.num_test": 120,
                          **{"data." + k: v for k, v in kw.items()}})["data"]


def test_shapes_splits_are_disjoint_deterministic_and_sized():
    d = _shapes()
    splits = {s: load_split(d, s) for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [300, 100, 120]
    hashes = {s: set(content_hashes(x.images)) for s, x in splits.items()}
    assert not hashes["train"] & hashes["val"] and not hashes["train"] & hashes["test"]
    assert not hashes["val"] & hashes["test"]
    assert torch.equal(load_split(dict(d), "test").images, splits["test"].images)
    other = load_split(_shapes(seed=1), "test")
    assert not set(content_hashes(other.images)) & hashes["test"]


def test_overlapping_file_splits_are_refused(tmp_path):
    files = [tmp_path / f"{i}.png" for i in range(4)]
    a = layouts.Listing(tmp_path, "train", files[:3], [0, 0, 1], ("a", "b"))
    b = layouts.Listing(tmp_path, "test", files[2:], [1, 1], ("a", "b"))
    with pytest.raises(DataError, match="in both the 'train' and the 'test' split"):
        layouts.check_disjoint({"train": a, "test": b})
    layouts.check_disjoint({"train": a, "test": layouts.Listing(tmp_path, "test", files[3:], [1],
                                                                 ("a", "b"))})


def test_carved_validation_is_per_class_seeded_and_leaves_train_the_rest(tmp_path):
    files = [tmp_path / f"{c}{i}.png" for c in "ab" for i in range(20)]
    listing = layouts.Listing(tmp_path, "train", files, [0] * 20 + [1] * 20, ("a", "b"))
    val, train = (layouts.carve(listing, s, 3, seed=0) for s in ("val", "train"))
    assert [val.labels.count(k) for k in (0, 1)] == [3, 3]
    assert sorted(val.files + train.files) == sorted(files) and not set(val.files) & set(train.files)
    assert layouts.carve(listing, "val", 3, seed=0).files == val.files
    assert layouts.carve(listing, "val", 3, seed=1).files != val.files


def test_choosing_never_reads_test():
    d = _shapes()
    with choosing():
        load_split(d, "val")
        with pytest.raises(DataError, match="test split was read while choosing"):
            load_split(d, "test")
    load_split(d, "test")  # reporting reads it


def test_snapshot_steps_are_evenly_spaced_with_both_ends():
    assert snapshot_steps(156, 5) == [0, 39, 78, 117, 156]
    assert snapshot_steps(10, 1) == [10] and snapshot_steps(10, 0) == []
    assert snapshot_steps(3, 5) == [0, 1, 2, 3]


def test_listed_snapshot_steps_are_kept_with_the_last():
    """A list places snapshots where a matched budget is read; steps past the end are dropped."""
    assert snapshot_steps(624, [0, 127, 208]) == [0, 127, 208, 624]
    assert snapshot_steps(100, [150, 50, 50]) == [50, 100]
    assert resolve(None, {"train.snapshots": [0, 127]})["train"]["snapshots"] == [0, 127]
    for bad in ([], [-1], [1.5], "3"):
        with pytest.raises(ParamsError, match="train.snapshots"):
            resolve(None, {"train.snapshots": bad})


def test_train_steps_sets_the_length_whatever_the_set_size():
    """train.steps trains a smaller set for a larger one's steps; epochs then only name it."""
    t = resolve(None, {"train.steps": 234, "train.batch_size": 128})["train"]
    sched = Schedule.of(1250, t, 1)
    assert (sched.steps_per_epoch, sched.total_steps) == (9, 234)
    assert Schedule.of(1250, {**t, "steps": None}, 1).total_steps == 9 * t["epochs"]
    with pytest.raises(ParamsError, match="train.steps"):
        resolve(None, {"train.steps": 0})


@pytest.mark.parametrize("method", ["mae", "simclr"])
def test_step_zero_snapshot_is_the_random_init_encoder(method, tmp_path):
    tiny = {"mae": {"params": "params/demo/mae_vit_tiny.yaml", "model.depth": 1,
                    "mae.decoder_depth": 1},
            "simclr": {"params": "params/demo/simclr_resnet18.yaml"}}[method]
    p = resolve(tiny.pop("params"), {**tiny, "out_dir": str(tmp_path), "data.num_train": 64,
                                     "data.num_val": 32, "data.num_test": 32, "train.epochs": 1,
                                     "train.batch_size": 32, "train.snapshots": 3})
    run = pretrain(p)
    assert sorted(f.name for f in (run / "snapshots").glob("*.pt")) == [
        "step_0000000.pt", "step_0000001.pt", "step_0000002.pt"]
    step0 = features(run, "step_0", "val")["features"]
    assert torch.equal(step0, features(run, "random_init", "val")["features"])
    assert not torch.equal(features(run, "step_2", "val")["features"], step0)  # it trained
    with choosing(), pytest.raises(DataError, match="while choosing"):
        features(run, "pretrained", "test")  # cached features are guarded too


def test_choosing_a_probe_setting_reads_val_only(tmp_path, cli):
    p = resolve("params/demo/mae_vit_tiny.yaml", {
        "out_dir": str(tmp_path), "data.num_train": 64, "data.num_val": 32, "data.num_test": 32,
        "train.epochs": 1, "train.batch_size": 32, "model.depth": 1, "mae.decoder_depth": 1,
        "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 0})
    run = pretrain(p)
    r = cli("choose", "--run", str(run), "--key", "eval.probe_base_lr", "--values", "0.01", "1.0")
    assert r.returncode == 0, r.stderr
    out = __import__("json").loads(r.stdout)
    assert set(out["values"]) == {"0.01", "1.0"} and str(out["best"]) in out["values"]
    assert not list((run / "features").glob("*_test_*"))  # choosing never made test features
    log = __import__("json").loads((tmp_path / "choices" / "mae_vit_tiny__eval.probe_base_lr.json").read_text())
    assert log["split"] == "val" and log["chosen"] == out["best"] and len(log["candidates"]) == 2
    # Choosing the same key again logs beside the first choice, never over it.
    r = cli("choose", "--run", str(run), "--key", "eval.probe_base_lr", "--values", "0.1")
    assert r.returncode == 0, r.stderr
    again = __import__("json").loads((tmp_path / "choices" / "mae_vit_tiny__eval.probe_base_lr__2.json").read_text())
    assert [c["value"] for c in again["candidates"]] == [0.1]
    assert __import__("json").loads((tmp_path / "choices" / "mae_vit_tiny__eval.probe_base_lr.json").read_text()) == log


def test_choosing_a_fine_tuning_recipe_scores_its_gain_on_val(tmp_path, cli):
    """`choose --run RUN --key eval.finetune_base_lr ... --key eval.finetune_blocks ...`: a grid
    of recipes, each fine-tuned from the probe it starts from and scored by its val gain over
    it; nothing of test is read; logged, with whether any recipe raised the probe."""
    p = resolve("params/demo/mae_vit_tiny.yaml", {
        "out_dir": str(tmp_path), "data.num_train": 64, "data.num_val": 32, "data.num_test": 32,
        "train.epochs": 1, "train.batch_size": 32, "model.depth": 1, "mae.decoder_depth": 1,
        "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 0, "eval.finetune_epochs": 1,
        "eval.finetune_batch_size": 16})
    run = pretrain(p)
    r = cli("choose", "--run", str(run), "--key", "eval.finetune_base_lr", "--values", "1e-4",
            "1e-2", "--key", "eval.finetune_blocks", "--values", "1", "all")
    assert r.returncode == 0, r.stderr
    out = __import__("json").loads(r.stdout)
    assert len(out["candidates"]) == 4
    for c in out["candidates"]:
        assert c["gain"] == pytest.approx(c["finetune_val_top1"] - c["start_val_top1"])
    best = max(out["candidates"], key=lambda c: c["gain"])
    assert out["best"] == best["value"] and out["raises"] == (best["gain"] > 0)
    assert {c["value"]["eval.finetune_blocks"] for c in out["candidates"]} == {1, "all"}
    assert not list((run / "features").glob("*_test_*")) and not (run / "eval.json").exists()
    log = __import__("json").loads((tmp_path / "choices" /
                                    "mae_vit_tiny__eval.finetune_base_lr+eval.finetune_blocks.json"
                                    ).read_text())
    assert log["split"] == "val" and log["chosen"] == out["best"]
    bad = cli("choose", "--run", str(run), "--key", "eval.finetune_optimizer", "--values", "sgd")
    assert bad.returncode != 0 and "not a probe setting" in bad.stderr


def test_choosing_a_pretraining_setting_pretrains_each_candidate_and_reads_val_only(tmp_path, cli):
    """`choose --params FILE --key train.base_lr`: one candidate run per value, each read out on
    val (probe and kNN) inside choosing(): no test features, no test predictions; the choice and
    its candidates logged in <out_dir>/choices/ for the report's appendix."""
    import json
    sets = [f"{k}={v}" for k, v in {
        "out_dir": tmp_path, "data.num_train": 64, "data.num_val": 32, "data.num_test": 32,
        "train.epochs": 1, "train.batch_size": 32, "model.depth": 1, "mae.decoder_depth": 1,
        "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 0}.items()]
    r = cli("choose", "--params", "params/demo/mae_vit_tiny.yaml", *sum((["--set", s] for s in sets), []),
            "--key", "train.base_lr", "--values", "1e-4", "4e-3")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [c["value"] for c in out["candidates"]] == [1e-4, 4e-3]
    for c in out["candidates"]:
        run = Path(c["run"])
        assert "data.num-train-64" in run.name  # a candidate's name carries the --set it ran with
        assert 0 <= c["probe_val_top1"] <= 100 and 0 <= c["knn_val_top1"] <= 100
        assert not list((run / "features").glob("*_test_*"))
        assert not (run / "predictions.json").exists() and not (run / "eval.json").exists()
    log = json.loads((tmp_path / "choices" / "mae_vit_tiny__train.base_lr.json").read_text())
    assert log["chosen"] == out["best"] and log["split"] == "val"
    bad = cli("choose", "--params", "params/demo/mae_vit_tiny.yaml", "--key", "eval.probe_epochs",
              "--values", "1", "2")
    assert bad.returncode == 2 and "not a pretraining key" in bad.stderr
    # A grid: every combination of two keys, each candidate's value naming both.
    r = cli("choose", "--params", "params/demo/mae_vit_tiny.yaml", *sum((["--set", s] for s in sets), []),
            "--key", "train.base_lr", "--values", "1e-4", "4e-3",
            "--key", "mae.mask_ratio", "--values", "0.5", "0.75")
    assert r.returncode == 0, r.stderr
    grid = json.loads(r.stdout)
    assert [c["value"] for c in grid["candidates"]] == [
        {"train.base_lr": lr, "mae.mask_ratio": m} for lr in (1e-4, 4e-3) for m in (0.5, 0.75)]
    assert len({c["run"] for c in grid["candidates"]}) == 4
    log = json.loads((tmp_path / "choices" / "mae_vit_tiny__train.base_lr+mae.mask_ratio.json")
                     .read_text())
    assert log["key"] == "train.base_lr x mae.mask_ratio" and log["chosen"] == grid["best"]
    uneven = cli("choose", "--params", "params/demo/mae_vit_tiny.yaml", "--key", "train.base_lr",
                 "--values", "1e-4", "--key", "mae.mask_ratio")
    assert uneven.returncode == 2 and "one --values list per --key" in uneven.stderr
