import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread_in_tmp(tmp_path, monkeypatch):
    """One torch thread (the CPU is shared; two threads under load run 20x slower) and a scratch working
    directory, so default outputs (runs/pretrain/...) never land in the repository."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    yield
    torch.set_num_threads(threads)
