"""The optimizer both phases build: fused Adam on CPU, the same updates as torch's default."""
import torch

from benchmark.core.schedule import adam_cosine, cosine_lr
from benchmark.pretraining.speed import run


def test_adam_cosine_is_fused_and_matches_the_default_adam():
    torch.manual_seed(0)
    ours = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    plain = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    opt, sched = adam_cosine(ours, 1e-2, 1e-4, total=10, warmup=2)
    ref = torch.optim.Adam(plain, lr=1e-2, weight_decay=1e-4)
    ref_sched = torch.optim.lr_scheduler.LambdaLR(ref, lambda s: cosine_lr(s, 10, 2))
    assert opt.defaults["fused"] and not ref.defaults["fused"]
    for step in range(10):
        grads = [torch.randn_like(p) for p in ours]
        for params, o, s in ((ours, opt, sched), (plain, ref, ref_sched)):
            for p, g in zip(params, grads):
                p.grad = g.clone()
            o.step()
            s.step()
    for a, b in zip(ours, plain):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert sched.get_last_lr() == ref_sched.get_last_lr()


def test_speed_quick_measures_every_row():
    table = run(quick=True).splitlines()
    rows = [line.split(" | ") for line in table if line.startswith("| ") and "---" not in line][1:]
    assert [r[0].lstrip("| ").split(" ")[0] for r in rows] == ["proxy", "proxy", "TOWER", "Adam"]
    for r in rows:
        assert float(r[2].replace(",", "")) > 0 and float(r[3].replace(",", "")) > 0
