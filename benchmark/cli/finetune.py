"""``tower-bench finetune``: one fine-tuning run, its record added to the results store."""
from __future__ import annotations

from benchmark.cli.options import (
    DEFAULT_BUDGET,
    DEFAULT_STORE,
    BatchSize,
    Budget,
    DataRoot,
    Download,
    Epochs,
    ImagenetWeights,
    ImageSize,
    Init,
    InitDecoder,
    LabelFraction,
    Lr,
    Modality,
    NumClasses,
    Protocol,
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
    protocol: Protocol = "finetune",
    download: Download = False,
) -> None:
    """Fine-tune one init on one task with one seed and store the result record."""
    import typer

    from benchmark.core import registry
    from benchmark.core.config import PROTOCOLS
    from benchmark.core.names import SUPERVISED, check_choice
    from benchmark.core.registry import check_init, check_tasks

    # names first, before torch is imported: a typo answers in a second
    check_init(init), check_tasks(task), check_choice("protocol", protocol, PROTOCOLS)
    from benchmark.core.config import FinetuneConfig, sized
    from benchmark.core.config import budget as get_budget
    from benchmark.finetuning.protocols import finetune
    from benchmark.results.store import ResultStore
    from benchmark.sweep.run import command_line, make_task, method_export

    task = resolve_tasks(task, modality, num_classes, split_seed, image_size)
    data_root = registry.own_manifest(task) or data_root
    b = sized(get_budget(budget), image_size)
    task_obj = make_task(task, data_root, b.image_size, download)
    if init in registry.METHODS or init in registry.VARIANTS or init == SUPERVISED:
        init = str(method_export(init, task_obj, task, b, data_root))
    cfg = FinetuneConfig.from_budget(
        b, task_obj, task, protocol=protocol, init=init, init_decoder=init_decoder, seed=seed,
        label_fraction=label_fraction, batch_size=batch_size, lr=lr, epochs=epochs, data_root=data_root,
        imagenet_weights=imagenet_weights,
    )
    record = finetune(cfg, task_obj)
    record["command"] = command_line()
    path = ResultStore(store).put(record)
    val = (f"best val {record['val_best']:.2f} at step {record['best_step']} of {record['steps_run']}"
           if "best_step" in record else f"val {record['val_best']:.2f}, nothing trained")
    typer.echo(f"{task} init={record['init']} {protocol} seed={seed}: test {record['metric']} {record['value']:.2f} "
               f"({val}) -> {path}")
