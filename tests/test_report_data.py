"""What a report says about its data on a real file tree (an ImageNet-100 layout of JPEGs with
unreadable files among them): the dataset as readers name it, the classes pretraining saw with
their names, the files the cache skipped with reasons, and parameter tables without the keys of
other data sources or unset ones."""
import json
from pathlib import Path

import pytest

from sslnb.data import example_trees
from sslnb.evaluate import evaluate
from sslnb.params import resolve
from sslnb.report import differences, paper, results_file, summary
from sslnb.report.notebook import params_rows
from sslnb.report.records import RunSpec
from sslnb.train import pretrain


@pytest.fixture(scope="module")
def imagenet100_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("in100")
    root = example_trees.kaggle(tmp / "tree", classes=4, per_class=12, val_per_class=4,
                                awkward=True)
    p = resolve("params/demo/mae_vit_tiny.yaml", {
        "out_dir": str(tmp / "logs"), "data.source": "imagenet100", "data.root": str(root),
        "data.cache_dir": str(tmp / "cache"), "data.pretrain_classes": ["train.X1"],
        "data.val_per_class": 2, "data.decode_workers": 1, "train.epochs": 1,
        "train.batch_size": 8, "model.depth": 1, "mae.decoder_depth": 1, "train.snapshots": 0,
        "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 0})
    run = pretrain(p)
    evaluate(run)
    return run


def test_methods_and_abstract_name_the_data_as_readers_do(imagenet100_run, tmp_path):
    rows, groups = summary.load([RunSpec(run_dir=str(imagenet100_run), group="in100")])
    diffs = differences.differences(groups)
    results = results_file.read(results_file.write(groups, diffs, rows, tmp_path))
    text = paper.methods_markdown(groups)
    abstract = paper.abstract(results)
    assert "ImageNet-100" in abstract and "imagenet100 at" not in abstract
    assert "the classes of train.X1 (the study's pretraining set)" in abstract
    data = json.loads((imagenet100_run / "data.json").read_text())
    assert len(data["classes"]) == 2  # train.X1 holds half the classes of the tree
    for c in data["classes"]:
        assert f"{c['name']} ({c['id']})" in text and c["name"].startswith("class ")
    assert data["skipped"], "the tree's corrupt or truncated JPEG was in the pretraining images"
    for s in data["skipped"]:
        assert f"`{s['file']}` ({s['reason']})" in text
    assert "Skipped files" in text


def test_parameter_tables_show_the_keys_of_the_runs_source_only(imagenet100_run):
    import yaml
    p = yaml.safe_load((Path(imagenet100_run) / "params.yaml").read_text())
    keys = dict(params_rows(p))
    assert keys["data.source"] == "imagenet100" and keys["data.pretrain_classes"] == ["train.X1"]
    assert "data.val_per_class" in keys
    assert not {"data.num_train", "data.num_val", "data.num_test"} & set(keys)
    assert None not in keys.values()
    shapes = dict(params_rows(resolve("params/demo/mae_vit_tiny.yaml")))
    assert "data.num_train" in shapes and "data.val_per_class" not in shapes
    assert "data.pretrain_classes" not in shapes  # null: not shown


def test_choice_tables_read_probe_and_fine_tuning_candidates_alike():
    """A fine-tuning choice logs start, fine-tuned and gain (no probe_val_top1): the appendix
    shows its own numbers, not a KeyError, and a probe choice keeps its probe and kNN."""
    from sslnb.report.notebook import candidate_scores
    ft = candidate_scores({"value": 1, "start_val_top1": 31.55, "finetune_val_top1": 25.1,
                           "gain": -6.45})
    assert ft["Probe val top-1 (%)"] == "31.6" and ft["Fine-tuned val top-1 (%)"] == "25.1"
    assert ft["Gain (points)"] == "-6.5" and ft["kNN val top-1 (%)"] == ""
    probe = candidate_scores({"value": 1e-3, "probe_val_top1": 40.0, "knn_val_top1": 35.25})
    assert probe["Probe val top-1 (%)"] == "40.0" and probe["kNN val top-1 (%)"] == "35.2"
    assert probe["Gain (points)"] == "" and probe["Fine-tuned val top-1 (%)"] == ""


def test_ran_marks_what_the_runs_used_not_a_superseded_best():
    """BYOL's epochs choice preferred 18 on val, yet its runs kept 6 (a later choice); a grid
    candidate runs only when every key and the choice's fixed overrides match."""
    from sslnb.report.notebook import ran_with
    params = {"train": {"epochs": 6, "base_lr": 1.0e-3}, "byol": {"momentum": 0.996},
              "eval": {"finetune_blocks": [1], "finetune_crop_scale": [1.0, 1.0]}}
    epochs = {"key": "train.epochs", "chosen": 18}
    assert not ran_with(epochs, {"value": 18}, params) and ran_with(epochs, {"value": 6}, params)
    grid = {"key": "train.base_lr x byol.momentum", "overrides": {"byol.momentum": 0.996}}
    assert ran_with(grid, {"value": {"train.base_lr": 0.001, "byol.momentum": 0.996}}, params)
    assert not ran_with(grid, {"value": {"train.base_lr": 0.001, "byol.momentum": 0.99}}, params)
    fixed = {"key": "train.base_lr", "overrides": {"augment.gray_p": 0.0}}
    assert not ran_with(fixed, {"value": 0.001}, params)  # an override the runs do not have
    ft = {"key": "eval.finetune_crop_scale x eval.finetune_blocks"}
    assert ran_with(ft, {"value": {"eval.finetune_crop_scale": [1.0, 1.0],
                                   "eval.finetune_blocks": 1}}, params)


def test_every_figure_text_reads_at_8pt_or_more_when_printed():
    """A 15-inch figure prints across the 7.2-inch A4 text width at about half size: its 7 pt
    legend would print at 3.4 pt. legible() raises each text to 8 pt at print size and thins
    x ticks that would overlap."""
    import matplotlib.pyplot as plt
    from matplotlib.text import Text
    from sslnb.report.plots import MIN_PRINT_PT, PRINT_WIDTH_IN, legible
    fig, ax = plt.subplots(1, 2, figsize=(15, 3))
    ax[0].plot([0, 0.0025, 0.005, 0.0075, 0.01], [1, 2, 3, 4, 5], label="a line")
    ax[0].legend(fontsize=7)
    ax[1].set_title("small", fontsize=6)
    legible(fig)
    scale = PRINT_WIDTH_IN / 15
    sizes = [t.get_fontsize() * scale for t in fig.findobj(Text) if t.get_text()]
    sizes += [t.get_fontsize() * scale for a in fig.axes for t in a.get_xticklabels()]
    assert sizes and min(sizes) >= MIN_PRINT_PT - 1e-6
    boxes = [t.get_window_extent() for t in ax[0].get_xticklabels() if t.get_text()]
    assert len(boxes) >= 2 and all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:]))
    plt.close(fig)


def test_forest_plot_draws_each_decided_primary_once(tmp_path):
    import matplotlib.pyplot as plt
    from sslnb.report.plots import primaries_forest
    from sslnb.report.claims import ClaimResult, Deciding, PrimaryDoc

    def result(short, verdict, decided):
        return ClaimResult(
            "probe", "", short, "", [], 2, verdict, "",
            PrimaryDoc("a", "b", "probe", "steps", 1, 2.0, "") if decided else None,
            deciding=Deciding(3.0, 1.0, 5.0, 0.975, 0.01, 1.5, 4.5) if decided else None)

    undecided = result("b", "not tested", False)
    assert primaries_forest([undecided], tmp_path) is None
    fig = primaries_forest([result("a", "supported", True), undecided,
                            result("c", "supported", True)], tmp_path)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["3. c", "1. a"]
    assert sorted(t.get_text() for t in ax.texts) == ["supported (97.5%)"] * 2
    assert (tmp_path / "primaries.png").is_file()
    plt.close(fig)
