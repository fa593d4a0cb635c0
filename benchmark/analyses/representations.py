"""Representations (paper Fig. 10): t-SNE of each init's pooled encoder features, with a k-NN number beside it.

The features are the pretrained encoder's, before any fine-tuning (``UNet.forward_pooled``), on a
labelled task. The picture is a qualitative view; the k-NN accuracy (cosine, train features ->
test labels, majority vote) is the number that can be compared.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.analyses import common
from benchmark.core import registry
from benchmark.errors import ConfigError
from benchmark.finetuning.inits import imagenet_weights_reachable, load_init
from benchmark.results.report import style
from benchmark.sweep.run import pretrained_init
from benchmark.sweep.spec import Outputs, Sweep
from zoo import UNetConfig

INITS = ("random", "imagenet", "simclr", "tower")
KS = (5, 10, 20)


@torch.no_grad()
def features(net, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Pooled last-stage encoder features of uint8 images, in eval mode."""
    net.eval()
    return torch.cat([net.forward_pooled(images[i : i + batch_size].float().div(255))
                      for i in range(0, len(images), batch_size)]).numpy()


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, k: int) -> float:
    """Accuracy (%) of a cosine k-NN classifier (k capped at the training size)."""
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), metric="cosine").fit(train_x, train_y)
    return 100.0 * float((knn.predict(test_x) == test_y).mean())


def tsne(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of standardised features; perplexity capped for small sets."""
    from sklearn.manifold import TSNE

    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3)))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def representations(sweep: Sweep, outputs: Outputs, ks: list[int]) -> list[Path]:
    """Pretrain what is missing of the sweep's inits, then write ``representations-<task>-<budget>.{md,csv,png}``
    to ``outputs.boards`` (no fine-tuning: seeds and label fractions are not used)."""
    task, budget, imagenet_weights = sweep.task, sweep.budget.name, sweep.imagenet_weights
    task_obj = common.load_task(sweep)
    if task_obj.kind != "multiclass" and task_obj.kind != "binary":
        raise ConfigError(f"representations needs a single-label classification task; {task} is {task_obj.kind}")
    b = sweep.budget
    train, test = task_obj.load("train"), task_obj.load("test")
    cfg = UNetConfig(b.encoder, task_obj.in_chans, task_obj.in_chans,
                     tuple(b.decoder_channels or UNetConfig.decoder_channels))
    notes, rows, points = [], [], {}
    for init in sweep.methods:
        if init == "imagenet" and imagenet_weights is None and not imagenet_weights_reachable(b.encoder):
            notes.append("imagenet: skipped, ImageNet weights are not available offline (pass --imagenet-weights)")
            continue
        spec = (pretrained_init(init, task_obj, task, b, sweep.data_root, outputs.progress)[0]
                if init in registry.METHODS or init in registry.VARIANTS else init)
        torch.manual_seed(0)  # random init: the same weights every run
        net = load_init(spec, cfg, imagenet_weights=imagenet_weights if init == "imagenet" else None)
        f_train, f_test = features(net, train.images), features(net, test.images)
        y_train, y_test = train.targets.numpy(), test.targets.numpy()
        rows.append({"init": init, **{f"knn{k}": knn_accuracy(f_train, y_train, f_test, y_test, k) for k in ks},
                     "n_train": len(y_train), "n_test": len(y_test), "dim": f_test.shape[1]})
        points[init] = (tsne(f_test), y_test)
    if not rows:
        raise ConfigError(f"no init could be evaluated: {'; '.join(notes)}")
    table = pd.DataFrame(rows)
    majority = 100.0 * float(np.bincount(test.targets.numpy()).max() / len(test))
    name = f"representations-{task}-{budget}"
    stamp = common.stamp(outputs.command, budget, task, [], data=f"{task} train ({len(train)}) -> test ({len(test)}) images",
                         features="pooled encoder features of the pretrained inits, no fine-tuning")
    body = [f"k-NN accuracy (%) of pooled encoder features: cosine distance, majority vote of the k nearest "
            f"training images, on the test split. Majority-class rate: {majority:.1f}%.", ""]
    body += common.markdown_table(table) + ["", "The t-SNE (PNG) shows the test features, coloured by class."]
    body += [f"- note: {n}" for n in notes]

    return common.write_outputs(outputs.boards, name, stamp, table, body, lambda fig: draw(fig, points, table, ks, name))


def draw(fig, points: dict[str, tuple[np.ndarray, np.ndarray]], table: pd.DataFrame, ks: list[int], name: str) -> None:
    """One t-SNE panel per init, a discrete colour per class (a legend, not a colour bar: classes are not a scale)."""
    from matplotlib.lines import Line2D

    fig.set_size_inches(3.2 * len(points) + 1.2, 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(points)))
    classes = sorted({int(c) for _, y in points.values() for c in y})
    col = style.class_colors(classes)
    for ax, (init, (xy, y)) in zip(axes, points.items()):
        ax.scatter(xy[:, 0], xy[:, 1], c=[col[int(c)] for c in y], s=14, edgecolor="black", linewidth=0.3)
        row = table[table["init"] == init].iloc[0]
        style.axis_title(ax, f"{init}\n" + ", ".join(f"{k}-NN {row[f'knn{k}']:.1f}%" for k in ks))
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], ls="", marker="o", color=col[c], markeredgecolor="black", label=str(c)) for c in classes]
    fig.legend(handles=handles, title="class", fontsize=7, title_fontsize=7, loc="outside right upper")
    style.title(fig, f"{name}: t-SNE of pooled encoder features (test split)")
