"""Linear probe and kNN on cached frozen features.

Linear probe (MAE paper, appendix A.2): BatchNorm1d without affine parameters (eps 1e-6) in front
of a Linear classifier, trained with LARS (or SGD), linear warm-up then cosine, on frozen features.
The BatchNorm only standardises the features; it folds into the Linear layer at the end, so the
classifier stays linear. Per-epoch train and val loss/top-1/top-5 are the study's probing curves.

kNN (Wu et al. 2018, as used by DINO): cosine similarity, k nearest training features, votes
weighted by exp(similarity / T).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.optim import Lars

from .optim import scaled_lr, set_lr, warmup_cosine


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[torch.Tensor]:
    k = min(max(ks), logits.shape[1])
    top = logits.topk(k, dim=1).indices
    hit = top == labels.view(-1, 1)
    return [hit[:, :min(kk, logits.shape[1])].any(dim=1).sum() for kk in ks]


def linear_classifier(dim: int, num_classes: int) -> nn.Module:
    head = nn.Linear(dim, num_classes)
    nn.init.trunc_normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)
    return nn.Sequential(nn.BatchNorm1d(dim, affine=False, eps=1e-6), head)


@torch.no_grad()
def classifier_scores(model, x, y, batch_size):
    model.eval()
    loss = torch.zeros((), device=x.device)
    c1 = torch.zeros((), device=x.device, dtype=torch.long)
    c5 = torch.zeros_like(c1)
    for s in range(0, x.shape[0], batch_size):
        logits = model(x[s:s + batch_size])
        loss += F.cross_entropy(logits, y[s:s + batch_size], reduction="sum")
        a, b = topk_correct(logits, y[s:s + batch_size])
        c1 += a
        c5 += b
    n = x.shape[0]
    return loss.item() / n, 100.0 * c1.item() / n, 100.0 * c5.item() / n


def linear_probe(train_x, train_y, val_x, val_y, *, num_classes: int, epochs: int = 100,
                 batch_size: int = 256, optimizer: str = "sgd", base_lr: float = 0.1,
                 weight_decay: float = 0.0, warmup_epochs: int = 10, seed: int = 0,
                 device: str | torch.device = "cpu", on_epoch=None) -> dict:
    """Train the probe on train, evaluate on val every epoch (the curves, unless val_x is None;
    nothing is chosen from them: the probe trains for its fixed epochs). Returns {'history': [per-epoch dicts], 'final':
    last epoch's dict, 'model': the trained classifier}. Settings by keyword
    (`**probe_settings(params['eval'])` passes the eval section's)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = linear_classifier(train_x.shape[1], num_classes).to(device)
    train_x, train_y = train_x.to(device), train_y.to(device)
    if val_x is not None:
        val_x, val_y = val_x.to(device), val_y.to(device)
    weight, bias = model[1].weight, model[1].bias
    lr = scaled_lr(base_lr, batch_size)
    if optimizer == "lars":
        # Trust-ratio adaptation and decay on the weight matrix only; the bias takes plain
        # momentum-SGD steps (as the MAE probe's LARS excludes biases).
        opt = Lars([{"params": [weight], "always_adapt": True, "weight_decay": weight_decay},
                    {"params": [bias], "always_adapt": False, "weight_decay": 0.0}],
                   lr=lr, momentum=0.9)
    else:
        opt = torch.optim.SGD([{"params": [weight], "weight_decay": weight_decay},
                               {"params": [bias], "weight_decay": 0.0}], lr=lr, momentum=0.9)
    n = train_x.shape[0]
    steps_per_epoch = max(1, n // batch_size)
    total, warmup = epochs * steps_per_epoch, warmup_epochs * steps_per_epoch
    g = torch.Generator().manual_seed(seed)
    history, step = [], 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n, generator=g).to(device)
        loss_sum = torch.zeros((), device=device)
        c1 = torch.zeros((), device=device, dtype=torch.long)
        c5 = torch.zeros_like(c1)
        seen = 0
        for i in range(steps_per_epoch):
            idx = order[i * batch_size:(i + 1) * batch_size]
            set_lr(opt, warmup_cosine(step, total, warmup, lr))
            logits = model(train_x[idx])
            loss = F.cross_entropy(logits, train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.detach() * idx.numel()
            a, b = topk_correct(logits.detach(), train_y[idx])
            c1 += a
            c5 += b
            seen += idx.numel()
        rec = {"epoch": epoch + 1, "train_loss": loss_sum.item() / seen,
               "train_top1": 100.0 * c1.item() / seen, "train_top5": 100.0 * c5.item() / seen}
        if val_x is not None:  # the curves; the snapshots' probes skip them
            rec["val_loss"], rec["val_top1"], rec["val_top5"] = classifier_scores(
                model, val_x, val_y, 4096)
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    return {"history": history, "final": history[-1], "model": model.eval()}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Top-1 class of each row of x (int64, on the CPU): what the bootstrap resamples."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(x[s:s + batch_size].to(device)).argmax(dim=1).cpu()
                      for s in range(0, x.shape[0], batch_size)])


def probe_settings(e: dict) -> dict:
    """The linear-probe keywords of a params['eval'] section."""
    return {"epochs": e["probe_epochs"], "batch_size": e["probe_batch_size"],
            "optimizer": e["probe_optimizer"], "base_lr": e["probe_base_lr"],
            "weight_decay": e["probe_weight_decay"], "warmup_epochs": e["probe_warmup_epochs"]}


@torch.no_grad()
def knn_predict(train_x, train_y, query_x, num_classes: int, k: int = 20,
                temperature: float = 0.07, chunk: int = 1024) -> torch.Tensor:
    """Top-1 class of each query row under a temperature-weighted cosine kNN classifier."""
    train = F.normalize(train_x.float(), dim=1)
    query = F.normalize(query_x.float(), dim=1)
    k = min(k, train.shape[0])
    out = []
    for s in range(0, query.shape[0], chunk):
        sim, idx = (query[s:s + chunk] @ train.T).topk(k, dim=1)
        votes = torch.zeros(sim.shape[0], num_classes, device=query.device)
        votes.scatter_add_(1, train_y[idx], (sim / temperature).exp())
        out.append(votes.argmax(dim=1).cpu())
    return torch.cat(out)


def knn_accuracy(train_x, train_y, val_x, val_y, num_classes: int, k: int = 20,
                 temperature: float = 0.07, chunk: int = 1024) -> float:
    """Top-1 accuracy (%) of the kNN classifier on (val_x, val_y)."""
    return accuracy(knn_predict(train_x, train_y, val_x, num_classes, k, temperature, chunk), val_y)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy (%) of predicted classes."""
    return 100.0 * (pred.cpu() == labels.cpu()).float().mean().item()
