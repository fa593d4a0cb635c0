"""Own data from the CLI: a CSV manifest, images/ + masks/ and an ImageFolder, in real file formats."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.core import registry
from benchmark.tasks.base import DataError
from tests.reliability.common import cli

FORMATS = ("png", "jpg", "tif", "gif")


@pytest.fixture(autouse=True)
def _forget_own_tasks():
    """Each test makes its tasks afresh, as a new process would."""
    registry.OWN.clear()
    yield
    registry.OWN.clear()


def _image(rng, size=(36, 40), grey=False) -> Image.Image:
    h, w = size
    x = rng.integers(0, 256, (h, w) if grey else (h, w, 3), dtype=np.uint8)
    return Image.fromarray(x)


def _save(img: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def write_pairs(root: Path, n: int = 10, fov: bool = False, mask_values=(0, 255)) -> Path:
    """images/ in every format + masks/ (1-bit PNG for 0/255, grey PNG otherwise), same stems."""
    rng = np.random.default_rng(0)
    for i in range(n):
        ext = FORMATS[i % len(FORMATS)]
        _save(_image(rng, grey=ext == "gif"), root / "images" / f"case{i}.{ext}")
        m = np.full((36, 40), mask_values[0], np.uint8)
        m[8:20, 5 + i:25 + i] = mask_values[1]
        mask = Image.fromarray(m).convert("1") if tuple(mask_values) == (0, 255) else Image.fromarray(m)
        _save(mask, root / "masks" / f"case{i}.png")
        if fov:
            _save(Image.fromarray(np.full((36, 40), 255, np.uint8)), root / "fov" / f"case{i}.gif")
    return root


def write_image_folder(root: Path, per_class: int = 5) -> Path:
    rng = np.random.default_rng(1)
    for split, k in (("train", per_class), ("val", 1), ("test", 2)):
        for cls in ("benign", "malignant"):
            for i in range(k):
                _save(_image(rng), root / split / cls / f"{cls}{i}.{FORMATS[i % len(FORMATS)]}")
    return root


def write_csv(root: Path, rows: list[dict], name: str = "study.csv") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def classification_csv(root: Path, n: int = 16) -> Path:
    """image,label,split with grey X-ray-like images in subfolders; both classes in every split."""
    rng = np.random.default_rng(2)
    rows = []
    for i in range(n):
        rel = f"scans/p{i}.{FORMATS[i % len(FORMATS)]}"
        _save(_image(rng, grey=True), root / rel)
        split = "test" if i % 8 in (0, 1) else "val" if i % 8 in (2, 3) else "train"
        rows.append({"image": rel, "label": "tb" if i % 2 else "normal", "split": split})
    return write_csv(root, rows)


def segmentation_csv(root: Path) -> Path:
    write_pairs(root / "data")
    rows = [{"image": f"data/images/case{i}.{FORMATS[i % 4]}", "mask": f"data/masks/case{i}.png"} for i in range(10)]
    return write_csv(root, rows)


LAYOUTS = {
    "pairs": lambda tmp: write_pairs(tmp / "vessels", fov=True),
    "imagefolder": lambda tmp: write_image_folder(tmp / "lesions"),
    "csv": lambda tmp: classification_csv(tmp / "cxr"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_pretrain_finetune_leaderboard_through_the_cli(layout, tmp_path, capsys, monkeypatch):
    """Own data runs pretrain -> finetune -> leaderboard; everything is named by manifest name + hash."""
    monkeypatch.chdir(tmp_path)
    data = LAYOUTS[layout](tmp_path)
    own = ("--modality", "xray")
    res = cli(capsys, "pretrain", "--task", data, "--budget", "smoke", "--out", "runs/pt", *own)
    assert res.code == 0, res.err
    res = cli(capsys, "finetune", "--task", data, "--budget", "smoke", "--init", "runs/pt/export",
              "--store", "results", *own)
    assert res.code == 0, res.err
    name = res.out.split()[0]
    assert re.fullmatch(rf"{data.stem}-[0-9a-f]{{8}}", name), res.out
    records = list((tmp_path / "results").rglob("*.json"))
    assert [json.loads(p.read_text())["task"] for p in records] == [name]
    res = cli(capsys, "leaderboard", data, "--store", "results", "--out", "boards", "--reference", "random", *own)
    assert res.code == 0, res.err
    board = tmp_path / "boards" / f"{name}-smoke.md"  # named as run names it: task and budget
    assert board.is_file() and str(tmp_path) not in board.read_text()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_linear_and_knn_protocols_on_own_data(layout, tmp_path, capsys, monkeypatch):
    """Own data through ``finetune --protocol linear|knn`` and its per-protocol board (kNN: classification only)."""
    monkeypatch.chdir(tmp_path)
    data = LAYOUTS[layout](tmp_path)
    segmentation = layout == "pairs"
    for protocol in ("linear", "knn"):
        res = cli(capsys, "finetune", "--task", data, "--budget", "smoke", "--init", "random", "--store", "results",
                  "--protocol", protocol)
        if protocol == "knn" and segmentation:
            assert res.code == 2 and len(res.error_lines) == 1 and "knn" in res.error_lines[0], res.err
            continue
        assert res.code == 0, res.err
        name = res.out.split()[0]
        res = cli(capsys, "leaderboard", data, "--store", "results", "--out", "boards", "--reference", "random",
                  "--protocol", protocol)
        assert res.code == 0, res.err
        assert f"protocol**: `{protocol}`" in (tmp_path / "boards" / f"{name}-smoke-{protocol}.md").read_text()


def test_run_sweep_on_a_csv(tmp_path, capsys, monkeypatch):
    """``run`` (pretrain + fine-tune + board in one) names the CSV's task in its run folder and board."""
    monkeypatch.chdir(tmp_path)
    data = segmentation_csv(tmp_path / "seg")
    res = cli(capsys, "run", "--method", "tower", "--task", data, "--budget", "smoke", "--seeds", "1",
              "--store", "results", "--out", "boards", "--reference", "tower", "--no-progress", "--modality", "fundus")
    assert res.code == 0, res.err
    name = registry.resolve_task(str(data), modality="fundus")
    assert [p.name for p in (tmp_path / "boards").glob("*.md")] == [f"{name}-smoke.md"]
    assert [p.name.startswith(f"tower-{name}-") for p in (tmp_path / "runs" / "pretrain").iterdir()] == [True]


def test_formats_channels_and_mask_values(tmp_path):
    grey = registry.make_task(str(classification_csv(tmp_path / "g")), None, 32)
    assert (grey.kind, grey.in_chans, grey.num_classes) == ("binary", 1, 2)
    assert [len(grey.load(s)) for s in ("train", "val", "test")] == [8, 4, 4]
    rgb = registry.make_task(str(write_pairs(tmp_path / "rgb")), None, 32)  # one grey GIF among RGB: RGB
    assert (rgb.kind, rgb.in_chans, rgb.num_classes) == ("segmentation", 3, 2)
    train = rgb.load("train")
    assert set(train.targets.unique().tolist()) == {0, 1} and train.valid is None
    ids = registry.make_task(str(write_pairs(tmp_path / "ids", mask_values=(0, 3))), None, 32)
    assert ids.num_classes == 4 and ids.load("train").targets.max() == 3
    assert registry.make_task(str(write_pairs(tmp_path / "ones", mask_values=(0, 1))), None, 32).num_classes == 2
    fov = registry.make_task(str(write_pairs(tmp_path / "fov", fov=True)), None, 32)
    assert fov.load("test").valid.all()


def test_own_segmentation_larger_than_the_budget_is_patched_at_native_resolution(tmp_path):
    """1-px lines on 96x80 images at a 32-px budget: patches of the images read at their own 96 px keep the lines
    (a 32-px resize would blur them away); the test split stays the full images; patch centres lie in the FOV."""
    rng = np.random.default_rng(4)
    rows = []
    for i in range(10):
        img = rng.integers(0, 60, (80, 96, 3), dtype=np.uint8)
        mask = np.zeros((80, 96), np.uint8)
        mask[:, 10 + 7 * i] = mask[20 + 5 * i, :] = 255  # one-pixel vessels
        img[mask > 0] = 250
        fov = np.zeros((80, 96), np.uint8)
        fov[:, :48] = 255  # the left half only
        for part, arr in (("im", img), ("m", mask), ("f", fov)):
            _save(Image.fromarray(arr), tmp_path / f"{part}{i}.png")
        rows.append({"image": f"im{i}.png", "mask": f"m{i}.png", "fov": f"f{i}.png"})
    task = registry.make_task(str(write_csv(tmp_path, rows)), None, 32)
    assert task.patches and "native-resolution 32-px patches" in task.input_note and "96 px" in task.input_note
    train, test = task.load("train"), task.load("test")
    n_train = len(set(train.sources))
    assert train.images.shape[1:] == (3, 32, 32) and len(train) == 8 * n_train
    assert test.images.shape[-2:] == (96, 96) and len(test) == len(set(test.sources))
    thin = train.targets.float().mean()
    assert 0 < thin < 0.15  # lines one pixel wide at 96 px, not smeared over the patch
    assert train.valid[:, 16, 16].all()  # every patch centred inside the field of view
    assert len(task.pretrain_images()) == 64 * n_train
    whole = registry.make_task(str(tmp_path / "study.csv"), None, 96)  # the data's own size: no patches
    assert not whole.patches and whole.load("train").images.shape[-1] == 96


def test_multilabel_and_drawn_split(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"image": _save(_image(rng), tmp_path / f"x{i}.ppm").name, "effusion": str(i % 2),
             "nodule": str((i // 2) % 2)} for i in range(20)]
    task = registry.make_task(str(write_csv(tmp_path, rows)), None, 32)
    assert (task.kind, task.num_classes) == ("multilabel", 2)
    sizes = [len(task.load(s)) for s in ("train", "val", "test")]
    assert sizes == [14, 2, 4]
    ids = {s: set(task.load(s).ids) for s in ("train", "val", "test")}
    assert not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])


def test_name_follows_content_and_options_and_rebuilds(tmp_path):
    data = write_image_folder(tmp_path / "lesions")
    name = registry.resolve_task(str(data))
    assert name == registry.resolve_task(str(data)) != registry.resolve_task(str(data), split_seed=7)
    assert name != registry.resolve_task(str(data), modality="dermatoscopy")
    registry.OWN.clear()  # another process: rebuilt from the manifest given as data_root
    assert registry.make_task(name, data, 32).name == name
    with (data / "train" / "benign" / "benign0.png").open("ab") as f:
        f.write(b"\0")
    registry.OWN.clear()
    with pytest.raises(DataError, match="files changed"):
        registry.make_task(name, data, 32)
    with pytest.raises(ValueError, match="--modality: only for own data"):
        registry.resolve_task("drive", modality="fundus")


def _bad(tmp_path: Path, case: str) -> tuple[Path, str]:
    """A CSV with one defect, and the row the error must name."""
    rng = np.random.default_rng(4)
    for i in range(6):
        _save(_image(rng), tmp_path / f"im{i}.png")
        _save(Image.fromarray((np.arange(36 * 40).reshape(36, 40) % 2 * 255).astype(np.uint8)).convert("1"),
              tmp_path / f"m{i}.png")
    seg = [{"image": f"im{i}.png", "mask": f"m{i}.png"} for i in range(6)]
    cls = [{"image": f"im{i}.png", "label": str(i % 2), "split": ("train", "train", "val", "val", "test", "test")[i]}
           for i in range(6)]
    if case == "missing file":
        seg[2]["image"] = "nowhere.png"
        return write_csv(tmp_path, seg), "row 3"
    if case == "size mismatch":
        _save(Image.new("L", (20, 20)), tmp_path / "small.png")
        seg[4]["mask"] = "small.png"
        return write_csv(tmp_path, seg), "row 5"
    if case == "mask not classes":
        _save(Image.fromarray(np.arange(36 * 40).reshape(36, 40).astype(np.uint8)), tmp_path / "grey.png")
        seg[1]["mask"] = "grey.png"
        return write_csv(tmp_path, seg), "row 2"
    if case == "empty split":
        for row in cls:
            row["split"] = "train" if row["split"] == "val" else row["split"]
        return write_csv(tmp_path, cls), "val split is empty"
    if case == "label outside classes":
        for row in cls:
            row["label"] = "normal" if row["label"] == "0" else "tb"
        cls[5]["label"] = "covid"
        return write_csv(tmp_path, cls), "row 6"
    if case == "duplicate rows":
        seg[3]["image"] = seg[0]["image"]
        return write_csv(tmp_path, seg), "row 4"
    raise AssertionError(case)


BAD = ("missing file", "size mismatch", "mask not classes", "empty split", "label outside classes", "duplicate rows")


@pytest.mark.parametrize("case", BAD)
def test_bad_input_names_the_file_and_row(case, tmp_path):
    path, where = _bad(tmp_path, case)
    with pytest.raises(DataError) as err:
        task = registry.make_task(str(path), None, 32)
        for split in ("train", "val", "test"):
            task.load(split)
    message = str(err.value)
    assert str(path) in message and where in message, message
    assert len(message.splitlines()) <= 2, message


def test_bad_input_is_one_line_on_the_cli(tmp_path, capsys):
    path, where = _bad(tmp_path, "size mismatch")
    res = cli(capsys, "finetune", "--task", path, "--budget", "smoke", "--store", tmp_path / "results")
    assert res.code == 2 and len(res.error_lines) == 1
    assert str(path) in res.error_lines[0] and where in res.error_lines[0]


def test_show_views_and_analyse_take_own_data(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = write_image_folder(tmp_path / "lesions")
    res = cli(capsys, "show-views", "--task", data, "--modality", "fundus", "--image-size", "32", "--n", "2",
              "--out", "views.png")
    assert res.code == 0 and "rays" in res.out, res.err
    assert Image.open(tmp_path / "views.png").size[0] > 0
    res = cli(capsys, "analyse", "convergence", "--task", data, "--budget", "smoke", "--seeds", "1",
              "--inits", "random", "--store", "results", "--out", "boards")
    assert res.code == 0, res.err
    name = registry.resolve_task(str(data))
    assert [json.loads(p.read_text())["task"] for p in (tmp_path / "results").rglob("*.json")] == [name]
    res = cli(capsys, "finetune", "--task", tmp_path / "nowhere.csv", "--budget", "smoke")
    assert res.code == 2 and "nowhere.csv: no such CSV manifest or data folder" in res.error_lines[0]


def test_launcher_jobs_carry_the_own_options_to_a_new_process(tmp_path, monkeypatch):
    """A worker rebuilds own data from its manifest: the --modality it was made with travels in the job,
    else the worker makes another task (another name) and refuses the job."""
    import pickle

    from benchmark.sweep.run import plan
    from benchmark.sweep.spec import Sweep

    monkeypatch.chdir(tmp_path)
    data = segmentation_csv(tmp_path / "seg")
    name = registry.resolve_task(str(data), modality="fundus")
    todo = plan(Sweep.resolve("tower", name, "smoke", seeds=1), tmp_path / "results", torch.device("cpu"))
    jobs = [pickle.loads(pickle.dumps(job)) for job in todo.pretrain + todo.finetune]
    assert [type(job).__name__ for job in jobs] == ["PretrainJob", "FinetuneJob"]
    registry.OWN.clear()  # the worker's process
    with pytest.raises(DataError, match="was made with --modality"):
        registry.make_task(name, data, 32)
    assert jobs[0]().joinpath("config.json").is_file()
    registry.OWN.clear()
    assert jobs[1](progress=False)["task"] == name
