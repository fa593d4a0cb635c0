"""Stamps name the data by task and folder name, never by the user's path (it differs per machine and leaks it)."""
from benchmark.analyses.common import stamp
from benchmark.core.config import FinetuneConfig


def test_analysis_stamp_names_the_data_folder_not_the_path():
    records = [{"config": {"data_root": "/home/someone/private/data/DRIVE"}},
               {"config": {"data_root": "../shared/data/DRIVE"}}]
    s = stamp("tower-bench analyse ablation", "cpu", "drive", records)
    assert s["data"] == "2 records of drive from DRIVE"
    assert "/home/someone" not in str(s) and "../shared" not in str(s)
    assert stamp("cmd", "cpu", "synth-fundus", [])["data"] == "0 records of synth-fundus (embedded data)"


def test_records_and_commands_name_no_machine_paths(tmp_path, monkeypatch):
    """A record keeps the data folder and an absolute init by their last names; the command line likewise."""
    import sys

    from benchmark.finetuning.protocols import public_config
    from benchmark.sweep.run import command_line
    from zoo.io import public_path

    cfg = FinetuneConfig(task="drive", data_root="../shared/data/DRIVE", init=str(tmp_path / "pretrain/tower/export"))
    public = public_config(cfg)
    assert public["data_root"] == "DRIVE" and public["init"] == "pretrain/tower/export"
    assert FinetuneConfig(**public).hash() == cfg.hash()  # only unhashed fields change
    monkeypatch.setattr(sys, "argv", ["tower-bench", "run", "--task", "drive", "--data-root", "/home/me/data/DRIVE",
                                      "--store", "runs/results"])
    assert command_line() == "tower-bench run --task drive --data-root DRIVE --store runs/results"
    assert public_path("runs/x") == "runs/x" and public_path(None) is None
