"""Stamps name the data by task and folder name, never by the user's path (it differs per machine and leaks it)."""
from benchmark.analyses.common import stamp


def test_analysis_stamp_names_the_data_folder_not_the_path():
    records = [{"config": {"data_root": "/home/someone/private/data/DRIVE"}},
               {"config": {"data_root": "../shared/data/DRIVE"}}]
    s = stamp("tower-bench analyse ablation", "cpu", "drive", records)
    assert s["data"] == "2 records of drive from DRIVE"
    assert "/home/someone" not in str(s) and "../shared" not in str(s)
    assert stamp("cmd", "cpu", "synth-fundus", [])["data"] == "0 records of synth-fundus (embedded data)"
