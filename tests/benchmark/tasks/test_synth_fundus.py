"""The embedded synthetic fundus tasks: deterministic, anatomically plausible, disjoint splits."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from benchmark.tasks.synth_fundus import SynthFundus, SynthFundusGrade, generate


@pytest.fixture(scope="module")
def batch():
    return generate(24, 64, 12345)


def test_same_seed_same_bytes_other_seed_differs(batch):
    generate.cache_clear()
    again = generate(24, 64, 12345)
    assert again is not batch
    assert torch.equal(again.images, batch.images) and torch.equal(again.vessels, batch.vessels)
    assert not torch.equal(generate(4, 64, 54321).images, batch.images[:4])
    # image i does not depend on how many images are generated
    assert torch.equal(generate(3, 64, 12345).images, batch.images[:3])


def test_vessels_are_darker_than_background_inside_fov(batch):
    green = batch.images[:, 1].float()
    bg_all = (batch.fov & ~batch.vessels.bool()).float()
    # local background level: mean of non-vessel FOV pixels in a 9x9 window (illumination varies a lot)
    k = torch.ones(1, 1, 9, 9)
    local = F.conv2d((green * bg_all)[:, None], k, padding=4) / F.conv2d(bg_all[:, None], k, padding=4).clamp_min(1)
    ratios = []
    for i in range(len(green)):
        ves = batch.vessels[i].bool()
        bg = bg_all[i].bool()
        assert 0.02 < ves.float().mean() < 0.2
        assert green[i][ves].mean() < green[i][bg].mean()
        ratio = green[i][ves] / local[i, 0][ves].clamp_min(1)
        assert ratio.mean() < 0.93, (i, ratio.mean())  # every image: vessels clearly darker than around them
        ratios.append(ratio.mean())
        assert not (ves & ~batch.fov[i]).any()
    assert sum(ratios) / len(ratios) < 0.88


def test_fov_mask_is_the_bright_disc_of_the_frame(batch):
    grey = batch.images.float().mean(1)
    for i in range(len(grey)):
        fov = batch.fov[i]
        assert 0.55 < fov.float().mean() < 0.72  # a circle of radius 0.88-0.95 of the half-width
        assert grey[i][~fov].mean() < 15 and grey[i][fov].mean() > 40
        assert fov[32, 32] and not fov[0, 0] and not fov[63, 63]


def test_brightest_blurred_point_is_the_optic_disc(batch):
    grey = batch.images.float().mean(1, keepdim=True)
    k = torch.ones(1, 1, 7, 7) / 49
    blurred = F.conv2d(grey, k, padding=3)[:, 0]
    for i in range(len(blurred)):
        y, x = divmod(int(blurred[i].argmax()), 64)
        cx, cy, r = batch.disc[i].tolist()
        assert (x - cx) ** 2 + (y - cy) ** 2 <= (1.5 * r) ** 2, (i, (x, y), (cx, cy, r))
    assert (batch.disc[:, 0] < 32).any() and (batch.disc[:, 0] > 32).any()  # left and right eyes


def test_fundus_colours_are_reddish_orange(batch):
    rgb = batch.images.permute(1, 0, 2, 3)[:, batch.fov].float().mean(1)
    assert rgb[0] > rgb[1] > rgb[2]
    per_image = torch.stack([batch.images[i][:, batch.fov[i]].float().mean(1) for i in range(len(batch.images))])
    assert per_image[:, 0].std() > 3  # colour varies between images


def test_tasks_splits_disjoint_and_deterministic():
    task = SynthFundus()
    splits = {s: task.load(s) for s in ("train", "val", "test")}
    assert [len(s) for s in splits.values()] == [16, 16, 64]
    flat = {s: {bytes(x.numpy().tobytes()) for x in v.images} for s, v in splits.items()}
    flat["pool"] = {bytes(x.numpy().tobytes()) for x in task.pretrain_images()}
    assert len(flat["pool"]) == 2048  # the unlabelled pool: many more images than labels
    for a, b in (("train", "val"), ("train", "test"), ("val", "test"), ("pool", "train"), ("pool", "val"),
                 ("pool", "test")):
        assert not flat[a] & flat[b], (a, b)
    assert torch.equal(SynthFundus(seed=9).load("test").images, splits["test"].images)  # run seed: same data
    assert splits["train"].valid.dtype == torch.bool and splits["train"].targets.dtype == torch.uint8


def test_grade_labels_follow_lesion_count():
    f = generate(60, 64, 777)
    g, n = f.grades.numpy(), f.lesions.numpy()
    assert set(g.tolist()) == {0, 1, 2}
    assert (n[g == 0] == 0).all() and (n[g == 1] >= 1).all() and (n[g == 1] <= 3).all() and (n[g == 2] >= 5).all()
    assert np.corrcoef(g, n)[0, 1] > 0.8
    task = SynthFundusGrade()
    y = task.load("val").targets
    assert y.dtype == torch.int64 and set(y.tolist()) <= {0, 1, 2} and len(set(y.tolist())) == 3


def test_generation_is_fast_and_sizes_work():
    t = time.perf_counter()
    f = generate(32, 128, 4242)
    assert time.perf_counter() - t < 20  # generous: CI machines are shared
    assert f.images.shape == (32, 3, 128, 128) and f.vessels.shape == (32, 128, 128)
    # finer images resolve more thin vessels: larger vessel fraction than at 64 px
    assert f.vessels.float().mean() > generate(32, 64, 4242).vessels.float().mean()
    with pytest.raises(ValueError, match="image_size >= 32"):
        generate(2, 16, 0)
