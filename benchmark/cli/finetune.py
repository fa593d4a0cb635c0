"""``tower-bench finetune``: one fine-tuning run, its record added to the results store."""
from __future__ import annotations

from .options import (
    DEFAULT_BUDGET,
    DEFAULT_STORE,
    BatchSize,
    Budget,
    DataRoot,
    Epochs,
    ImagenetWeights,
    ImageSize,
    Init,
    InitDecoder,
    LabelFraction,
    Lr,
    Modality,
    NumClasses,
    Seed,
    SplitSeed,
    Store,
    Task,
    resolve_tasks,
)


def finetune_command(
    init: Init = "random",
    task: Task = "synth-fundus",
    budget: Budget = DEFAULT_BUDGET,
    seed: Seed = 0,
    label_fraction: LabelFraction = 1.0,
    batch_size: BatchSize = None,
    lr: Lr = None,
    epochs: Epochs = None,
    init_decoder: InitDecoder = None,
    data_root: DataRoot = None,
    imagenet_weights: ImagenetWeights = None,
    store: Store = DEFAULT_STORE,
    image_size: ImageSize = None,
    modality: Modality = None,
    num_classes: NumClasses = None,
    split_seed: SplitSeed = None,
) -> None:
    """Fine-tune one init on one task with one seed and store the result record."""
    import typer

    from benchmark import registry
    from benchmark.config import budget as get_budget
    from benchmark.finetune import FinetuneConfig, finetune
    from benchmark.store import ResultStore

    task = resolve_tasks(task, modality, num_classes, split_seed, image_size)
    data_root = registry.own_manifest(task) or data_root
    task_obj = registry.make_task(task, data_root, image_size or get_budget(budget).image_size)
    cfg = FinetuneConfig.from_budget(
        budget, task_obj, task, init=init, init_decoder=init_decoder, seed=seed, label_fraction=label_fraction,
        batch_size=batch_size, lr=lr, epochs=epochs, data_root=data_root, imagenet_weights=imagenet_weights,
    )
    record = finetune(cfg, task_obj)
    path = ResultStore(store).put(record)
    typer.echo(f"{task} init={record['init']} seed={seed}: test {record['metric']} {record['value']:.2f} "
               f"(best val {record['val_best']:.2f} at step {record['best_step']} of {record['steps_run']}) -> {path}")
