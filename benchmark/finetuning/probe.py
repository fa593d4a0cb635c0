"""The frozen-encoder protocols SSL papers report beside fine-tuning: a linear probe and a kNN classifier.

Both keep the init's weights exactly as pretrained: no gradient, BatchNorm in eval mode, so they measure the
representation rather than how well it adapts. On classification, BatchNorm's running statistics are first
recomputed on the training split (precise-BN, Wu & Johnson 2021): statistics carried over from pretraining
views, or a random init's untouched mean 0 / variance 1, would describe other inputs than the probed ones.

- ``linear``, classification: pooled features of every split are computed once (no augmentation, as they
  are cached), standardised on the training split, and an L-BFGS logistic regression is fitted for each
  strength of a grid; validation picks one (``benchmark.finetuning.logistic``).
  Segmentation: the decoder (the init's, when it has one) and head are trained on the frozen encoder,
  with the paper's augmentations.
- ``knn``, classification only: cosine similarity of L2-normalised pooled features, the k = 20 nearest
  training samples vote with weight exp(similarity / 0.07) (Wu et al. 2018, InstDisc; solo-learn's
  ``WeightedKNNClassifier``); a sample's class scores are its vote shares. Nothing is trained.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.config import FinetuneConfig
from benchmark.finetuning.logistic import logistic_probe
from benchmark.finetuning.scoring import evaluate, run_batched, score, selection_floor, test_bootstrap, to_scores, validation
from benchmark.finetuning.training import Validation, image_batches, train_loop
from benchmark.tasks.base import Split, Task

KNN_K = 20
KNN_TEMPERATURE = 0.07


class FrozenEncoder(nn.Module):
    """A U-Net whose encoder stays frozen and in eval mode while the rest of it trains."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net
        net.encoder.requires_grad_(False)

    def train(self, mode: bool = True) -> "FrozenEncoder":
        super().train(mode)
        self.net.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@torch.no_grad()
def precise_bn(net: nn.Module, split: Split, batch_size: int, device: torch.device, fast: bool = False) -> None:
    """Recompute the encoder's BatchNorm running statistics as the average over the training split's batches,
    the rest of the network untouched; the encoder is left in eval mode."""
    norms = [m for m in net.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches seen
    net.encoder.train()
    for _ in run_batched(net.forward_pooled, split, batch_size, device, fast, train_mode_batches=True):
        pass
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    net.encoder.eval()


@torch.no_grad()
def pooled_features(net: nn.Module, split: Split, batch_size: int, device: torch.device,
                    fast: bool = False) -> torch.Tensor:
    """(N, F) float32 pooled last-stage features of the full split, the encoder in eval mode."""
    net.eval()
    return torch.cat(list(run_batched(net.forward_pooled, split, batch_size, device, fast)))


def knn_scores(bank: torch.Tensor, bank_targets: torch.Tensor, queries: torch.Tensor, kind: str,
               num_classes: int, k: int = KNN_K, temperature: float = KNN_TEMPERATURE,
               chunk: int = 1024) -> torch.Tensor:
    """Each query's weighted vote shares among its ``k`` most cosine-similar bank samples: (N, classes)
    class scores, or (N, labels) label scores for multi-label targets (the weighted share that has it).
    Queries go ``chunk`` at a time, so the similarity matrix of a large split never exists whole."""
    bank = F.normalize(bank.float(), dim=1)
    out = []
    for q in F.normalize(queries.float(), dim=1).split(chunk):
        sim, idx = (q @ bank.T).topk(min(k, len(bank)), dim=1)
        weights = (sim / temperature).exp()
        if kind == "multilabel":
            votes = bank_targets.float()[idx]
        else:
            votes = F.one_hot(bank_targets.long()[idx], max(num_classes, 2)).float()
        out.append((weights.unsqueeze(-1) * votes).sum(1) / weights.sum(1, keepdim=True))
    return torch.cat(out)


def probe(cfg: FinetuneConfig, model: nn.Module, task: Task, train: Split, val: Split, test: Split,
          device: torch.device, progress: bool) -> dict:
    """The test score and training record of ``cfg.protocol`` (linear | knn) on ``model`` from ``build_model``."""
    if task.kind == "segmentation":  # knn was refused by cfg.check_task
        net = FrozenEncoder(model)
        trained = train_loop(cfg, net, len(train), image_batches(cfg, train, task.kind, device),
                             validation(cfg, val, task.kind, task.num_classes, train, device), task.kind, device,
                             progress)
        return {**evaluate(net, test, task.kind, cfg.eval_batch_size, device, cfg.fast), **trained.record()}
    model.net.requires_grad_(False)
    if cfg.probe_revision >= 2:
        precise_bn(model.net, train, cfg.eval_batch_size, device, cfg.fast)
    feats = {name: pooled_features(model.net, split, cfg.eval_batch_size, device, cfg.fast)
             for name, split in (("train", train), ("val", val), ("test", test))}
    if cfg.protocol == "knn":
        def knn(name: str) -> torch.Tensor:
            return knn_scores(feats["train"], train.targets.to(device), feats[name], task.kind,
                              task.num_classes).cpu()

        test_pred = knn("test")
        return {"value": score(test_pred, test, task.kind)["value"], "val_best": score(knn("val"), val, task.kind)["value"],
                "test_bootstrap": test_bootstrap(test_pred, test, task.kind),
                "knn": {"k": min(KNN_K, len(train)), "temperature": KNN_TEMPERATURE}}
    if cfg.probe_revision >= 2:
        fit = logistic_probe(feats["train"].cpu(), train, feats["val"].cpu(), val, feats["test"].cpu(), test,
                             task.kind, model.fc.out_features)
        return {**fit.record, "test_bootstrap": test_bootstrap(fit.test_pred, test, task.kind)}
    head = model.fc
    targets = train.targets.to(device)

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(device)
        return feats["train"][idx], targets[idx]

    def head_score(m: nn.Module, name: str, split: Split) -> float:
        with torch.no_grad():
            m.eval()
            return score(to_scores(m(feats[name]).float(), task.kind).cpu(), split, task.kind)["value"]

    floor = selection_floor(cfg, val, task.kind, task.num_classes, train)
    trained = train_loop(cfg, head, len(train), batch, Validation(lambda m: head_score(m, "val", val), floor),
                         task.kind, device, progress)
    return {"value": head_score(head, "test", test), **trained.record()}
