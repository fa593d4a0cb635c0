"""``tower-bench show-views``: a picture of what a method trains on, to check its proxy task by eye."""
from __future__ import annotations

from benchmark.cli.options import (
    DataRoot,
    Download,
    ImageSize,
    Method,
    Modality,
    Model,
    NumClasses,
    Picture,
    Samples,
    Seed,
    SplitSeed,
    Task,
    resolve_tasks,
)


def show_views_command(
    method: Method = "tower",
    task: Task = "synth-fundus",
    model: Model = None,
    n: Samples = 6,
    out: Picture = "views.png",
    data_root: DataRoot = None,
    image_size: ImageSize = None,
    seed: Seed = 0,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
    download: Download = False,
) -> None:
    """Draw a method's views (and the restoration of a pretrained model) as a PNG grid."""
    from benchmark.pretraining.views import show_views

    task = resolve_tasks(task, modality, num_classes, split_seed, image_size)
    if download:
        from benchmark.sweep.run import fetch

        fetch(task, data_root, image_size)
    path = show_views(method, task, model=model, n=n, out=out, data_root=data_root, image_size=image_size, seed=seed)
    print(path)
