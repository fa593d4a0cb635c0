"""The frozen-encoder protocols SSL papers report beside fine-tuning: a linear probe and a kNN classifier.

Both keep the init's encoder exactly as pretrained: no gradient, BatchNorm in eval mode (its running
statistics never move), so they measure the representation rather than how well it adapts.

- ``linear``, classification: pooled features of every split are computed once (no augmentation, as they
  are cached) and a linear head is trained on them with the budget's schedule and early stopping.
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
from benchmark.finetuning.scoring import evaluate, run_batched, score, selection_floor, to_scores
from benchmark.finetuning.training import image_batches, train_loop
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

        def validate(m: nn.Module) -> float:
            return evaluate(m, val, task.kind, cfg.eval_batch_size, device, cfg.fast)["value"]

        trained = train_loop(cfg, net, len(train), image_batches(cfg, train, task.kind, device), validate,
                             task.kind, device, progress, selection_floor(cfg, val, task.kind, task.num_classes, train))
        return {**evaluate(net, test, task.kind, cfg.eval_batch_size, device, cfg.fast), **trained.record()}
    model.net.requires_grad_(False)
    feats = {name: pooled_features(model.net, split, cfg.eval_batch_size, device, cfg.fast)
             for name, split in (("train", train), ("val", val), ("test", test))}
    if cfg.protocol == "knn":
        def knn(name: str, split: Split) -> float:
            bank_targets = train.targets.to(device)
            return score(knn_scores(feats["train"], bank_targets, feats[name], task.kind, task.num_classes).cpu(),
                         split, task.kind)["value"]

        return {"value": knn("test", test), "val_best": knn("val", val),
                "knn": {"k": min(KNN_K, len(train)), "temperature": KNN_TEMPERATURE}}
    head = model.fc
    targets = train.targets.to(device)

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = idx.to(device)
        return feats["train"][idx], targets[idx]

    def head_score(m: nn.Module, name: str, split: Split) -> float:
        with torch.no_grad():
            m.eval()
            return score(to_scores(m(feats[name]).float(), task.kind).cpu(), split, task.kind)["value"]

    trained = train_loop(cfg, head, len(train), batch, lambda m: head_score(m, "val", val), task.kind, device,
                         progress, selection_floor(cfg, val, task.kind, task.num_classes, train))
    return {"value": head_score(head, "test", test), **trained.record()}
