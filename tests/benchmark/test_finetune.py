import pytest
import torch

from benchmark.core.config import FinetuneConfig
from benchmark.finetuning.protocols import build_model, finetune, label_subset
from benchmark.finetuning.training import augment_batch
from benchmark.tasks.base import Split, Task
from tests.conftest import TINY_DECODER, TINY_ENCODER


class ToySegmentation(Task):
    """Bright squares on noise; the label is the square. Learnable in a few epochs."""

    name, kind, modality, metric = "toy-seg", "segmentation", "fundus", "dice"
    in_chans, num_classes, image_size = 3, 2, 32
    description = source = layout = "made in the test"

    def _load(self, split):
        g = torch.Generator().manual_seed({"train": 0, "val": 1, "test": 2}[split])
        n = {"train": 12, "val": 4, "test": 5}[split]
        y = torch.zeros(n, 32, 32, dtype=torch.uint8)
        corners = torch.randint(0, 20, (n, 2), generator=g)
        for i, (r, c) in enumerate(corners.tolist()):
            y[i, r:r + 10, c:c + 10] = 1
        noise = torch.rand(n, 3, 32, 32, generator=g) * 0.5
        x = ((noise + 0.5 * y[:, None]) * 255).to(torch.uint8)
        valid = torch.ones(n, 32, 32, dtype=torch.bool)
        valid[:, :, :2] = False
        return Split(x, y, valid, [f"{split}{i}" for i in range(n)])


class ToyClassification(ToySegmentation):
    name, kind, metric, num_classes = "toy-cls", "multiclass", "auc", 3

    def _load(self, split):
        seg = super()._load(split)
        labels = torch.arange(len(seg)) % 3
        images = (seg.images.float() * (0.4 + 0.3 * labels.view(-1, 1, 1, 1))).to(torch.uint8)
        return Split(images, labels, None, seg.ids)


def tiny_cfg(task, **kw):
    base = dict(task=task, encoder=TINY_ENCODER, decoder_channels=TINY_DECODER, epochs=3, batch_size=4,
                lr=3e-3, patience=5, eval_batch_size=4)
    base.update(kw)
    return FinetuneConfig(**base)


def test_segmentation_finetune_returns_a_complete_record():
    rec = finetune(tiny_cfg("toy-seg"), ToySegmentation(), progress=False)
    assert rec["metric"] == "dice" and 0.0 <= rec["value"] <= 100.0
    assert len(rec["curve"]) == rec["epochs_run"] == 3
    assert rec["val_best"] == max(rec["curve"]) and rec["curve"][rec["best_epoch"]] == rec["val_best"]
    assert rec["n_test"] == 5 and rec["config_hash"] == tiny_cfg("toy-seg", seed=7).hash()


def test_classification_finetune_scores_auc_on_the_full_test_split():
    rec = finetune(tiny_cfg("toy-cls"), ToyClassification(), progress=False)
    assert rec["metric"] == "auc" and 0.0 <= rec["value"] <= 100.0 and rec["n_test"] == 5


def test_early_stopping_stops_after_patience():
    rec = finetune(tiny_cfg("toy-seg", epochs=30, patience=1, lr=0.0), ToySegmentation(), progress=False)
    assert rec["epochs_run"] < 30 and rec["epochs_run"] == rec["best_epoch"] + 2


def test_label_fraction_subsets_are_fixed_per_seed_and_never_empty():
    a, b = label_subset(100, 0.1, seed=3), label_subset(100, 0.1, seed=3)
    assert torch.equal(a, b) and len(a) == 10 and not torch.equal(a, label_subset(100, 0.1, seed=4))
    assert len(label_subset(5, 0.01, 0)) == 1


def test_label_fractions_of_patches_count_images_not_patches():
    from benchmark.finetuning.protocols import labelled_subset
    from benchmark.tasks.base import Split

    ids = [f"train/{i}@{k},0" for i in range(16) for k in range(8)]  # 16 images x 8 patches
    split = Split(torch.zeros(128, 1, 4, 4, dtype=torch.uint8), torch.zeros(128, dtype=torch.long), ids=ids)
    two = labelled_subset(split, 0.125, seed=0)
    assert len(set(two.sources)) == 2 and len(two) == 16  # every patch of 2 labelled images
    plain = Split(torch.zeros(100, 1, 4, 4, dtype=torch.uint8), torch.zeros(100, dtype=torch.long))
    assert labelled_subset(plain, 0.1, seed=3).ids == [str(i) for i in label_subset(100, 0.1, seed=3).tolist()]
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError, match="label-fraction"):
            tiny_cfg("toy-seg", label_fraction=bad)


def test_augmentation_moves_masks_with_images():
    g = torch.Generator().manual_seed(0)
    y = torch.zeros(8, 16, 16, dtype=torch.uint8)
    y[:, 2:6, 3:9] = 1
    x = y[:, None].float().expand(8, 3, 16, 16).clone()
    xa, ya = augment_batch(x, y, g)
    # the bright region still sits where the mask is, after flips and transposes
    inside = xa.mean(1)[ya.bool()].mean()
    outside = xa.mean(1)[~ya.bool()].mean()
    assert inside > outside + 0.5
    assert not torch.equal(ya, y)  # some samples were flipped


def test_encoder_only_init_gets_the_random_decoder(tmp_path):
    from zoo import UNet
    from zoo.hub import save_pretrained

    torch.manual_seed(123)
    net = UNet(TINY_ENCODER, 3, 3, TINY_DECODER)
    save_pretrained(net, tmp_path / "simclr", method="simclr", trains_decoder=False)
    save_pretrained(net, tmp_path / "tower", method="tower", trains_decoder=True)
    task = ToySegmentation()
    rand = build_model(tiny_cfg("toy-seg", init="random"), task)
    enc_only = build_model(tiny_cfg("toy-seg", init=str(tmp_path / "simclr")), task)
    full = build_model(tiny_cfg("toy-seg", init=str(tmp_path / "tower")), task)
    key = "blocks.0.convs.0.0.weight"
    assert torch.equal(enc_only.decoder.state_dict()[key], rand.decoder.state_dict()[key])
    assert torch.equal(full.decoder.state_dict()[key], net.decoder.state_dict()[key])
    assert torch.equal(enc_only.encoder.state_dict()["conv1.0.weight"], net.encoder.state_dict()["conv1.0.weight"])
