"""Every number with its uncertainty: the bootstrap (coverage, width, pairing), the sentences it
writes, the three disjoint splits, the guard that keeps choices off `test`, and the snapshots
across pretraining."""
import math

import numpy as np
import pytest
import torch

from sslnb import stats
from sslnb.data import choosing, content_hashes, layouts, load_split
from sslnb.errors import DataError
from sslnb.features import features
from sslnb.params import resolve
from sslnb.train import pretrain, snapshot_steps


def test_interval_covers_a_known_accuracy_at_about_the_nominal_rate():
    rng = np.random.default_rng(1)
    truth, n = 0.7, 400
    covered = 0
    for trial in range(100):
        correct = rng.random(n) < truth
        ci = stats.accuracy_interval(correct, resamples=1000, seed=trial)
        covered += ci.low <= 100 * truth <= ci.high
    assert covered >= 90


def test_interval_width_matches_the_binomial_one():
    rng = np.random.default_rng(2)
    for p, n in ((0.6, 2000), (0.15, 1000)):
        correct = rng.random(n) < p
        ci = stats.accuracy_interval(correct, resamples=2000)
        phat = correct.mean()
        binomial = 2 * 1.959964 * math.sqrt(phat * (1 - phat) / n) * 100
        assert abs((ci.high - ci.low) / binomial - 1) < 0.2
        assert ci.low < ci.value < ci.high and ci.value == pytest.approx(100 * phat)


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    correct = np.random.default_rng(3).random(500) < 0.5
    d = stats.difference_interval(correct, correct.copy())
    assert (d.value, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero


def test_a_constructed_ten_point_difference_excludes_zero():
    rng = np.random.default_rng(4)
    b = rng.random(1000) < 0.5
    a = b.copy()
    a[np.flatnonzero(~b)[:100]] = True  # a is right on 100 more images: +10 points
    d = stats.difference_interval(a, b)
    assert d.value == pytest.approx(10.0) and d.excludes_zero and d.low < 10 < d.high
    # unpaired noise would hide it much less well: pairing is what makes the interval narrow
    assert d.high - d.low < 4


def test_seeds_widen_the_interval_when_runs_disagree():
    rng = np.random.default_rng(5)
    same = np.stack([rng.random(1000) < 0.6] * 3)
    apart = np.stack([rng.random(1000) < p for p in (0.4, 0.6, 0.8)])
    w = lambda c: stats.accuracy_interval(c).high - stats.accuracy_interval(c).low  # noqa: E731
    assert w(apart) > 2 * w(same)


def test_sentences_change_wording_when_the_interval_contains_zero():
    ahead = stats.compare("SimCLR", "MAE", stats.Interval(13.6, 11.2, 16.0))
    assert ahead == "SimCLR beats MAE by 13.6 points (95% CI 11.2 to 16.0)."
    behind = stats.compare("MAE", "SimCLR", stats.Interval(-13.6, -16.0, -11.2))
    assert behind == "SimCLR beats MAE by 13.6 points (95% CI 11.2 to 16.0)."
    tie = stats.compare("MAE", "SimCLR", stats.Interval(0.8, -1.1, 2.7))
    assert tie.startswith("No detectable difference between MAE and SimCLR") and "contains 0" in tie


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
