"""One-GPU check of the CUDA fast path: ``python -m benchmark.tools.gpu_check`` (< 4 minutes on one H100).

On TOWER's full training step (views + loss + backward + Adam) at 512 px with a ResNet-50 U-Net:
- CUDA and CPU agree on the loss and gradient norm of the same batch and views (fp32, TF32 off);
- images/s for fp32 eager, bf16 + channels_last, bf16 + channels_last + torch.compile;
- the proxy (views alone) as a share of the step; achieved TFLOP/s (FlopCounterMode FLOPs of one
  step / step time); the GPU's busy share over a few profiled steps (kernel time / wall time);
and prints a Markdown table against the targets. ``--dry-run`` runs the same code on the CPU with a
tiny encoder at 64 px for 2 iterations, so CI exercises it. Exit code 1 when a target is missed
(not in a dry run); without CUDA and without ``--dry-run`` it prints "skipped: no CUDA device".
"""
from __future__ import annotations

import argparse
import copy
import shlex
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

TARGET_SPEEDUP = 2.0  # bf16 + channels_last vs fp32 eager
TARGET_PROXY_SHARE = 0.05
TARGET_BUSY = 0.90
AGREE_RTOL = 1e-3  # fp32 CUDA (TF32 off) vs CPU: only summation order differs


@dataclass
class Setup:
    device: torch.device
    encoder: str
    decoder_channels: tuple[int, ...] | None
    size: int
    batch: int
    iters: int
    warmup: int
    agree_batch: int
    compile_backend: str


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _method(s: Setup, device: torch.device, channels_last: bool = False):
    """TOWER around a fresh U-Net, built by the pretraining loop's own builder (same seed: same weights)."""
    from benchmark.core.config import PretrainConfig
    from benchmark.pretraining.build import build_method

    cfg = PretrainConfig(method="tower", encoder=s.encoder, decoder_channels=s.decoder_channels, seed=0)
    method = build_method(cfg, 3, "fundus")
    return method.to(device, memory_format=torch.channels_last) if channels_last else method.to(device)


def _images(s: Setup) -> torch.Tensor:
    """uint8 synthetic fundus images at the check's size (the rays mask looks for the optic disc)."""
    from benchmark.core import registry

    images = registry.task_class("synth-fundus")(None, s.size).pretrain_images()
    return images[torch.arange(s.batch) % len(images)]


@contextmanager
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def agreement(s: Setup, images: torch.Tensor) -> dict[str, float]:
    """Relative differences of loss and gradient norm, device vs CPU, on the same weights, batch and views."""
    cpu = _method(s, torch.device("cpu"))
    dev = copy.deepcopy(cpu).to(s.device)
    x = images[: s.agree_batch].float().div(255)
    with torch.no_grad():
        views = cpu.views(x, torch.Generator().manual_seed(1))
    out = {}
    with _no_tf32():
        results = []
        for method, device in ((cpu, torch.device("cpu")), (dev, s.device)):
            parts = method.loss(x.to(device), {k: v.to(device) for k, v in views.items()})
            parts["loss"].backward()
            grad = torch.cat([p.grad.flatten() for p in method.parameters() if p.grad is not None]).norm()
            results.append({**{k: v.item() for k, v in parts.items()}, "grad_norm": grad.item()})
    ref, got = results
    for key in ref:
        out[key] = abs(got[key] - ref[key]) / max(abs(ref[key]), 1e-12)
    return out


def make_step(s: Setup, images: torch.Tensor, bf16: bool, channels_last: bool,
              compiled: bool) -> tuple[Callable[[], None], Callable[[], object]]:
    """(full step, views alone) on one batch resident on the device, as pretrain.py runs them."""
    method = _method(s, s.device, channels_last)
    if compiled:
        method.net.compile(backend=s.compile_backend)
    optimizer = torch.optim.Adam([p for p in method.parameters() if p.requires_grad], lr=1e-4)
    gen = torch.Generator(device=s.device).manual_seed(0)
    x = images.to(s.device, non_blocking=True).float().div_(255)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def views():
        with torch.no_grad():
            return method.views(x, gen)

    def train(v) -> None:
        with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = method.loss(x, v)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return (lambda: train(views())), views


def seconds_per_call(fn: Callable[[], object], s: Setup) -> float:
    for _ in range(s.warmup):
        fn()
    _sync(s.device)
    t0 = time.perf_counter()
    for _ in range(s.iters):
        fn()
    _sync(s.device)
    return (time.perf_counter() - t0) / s.iters


def step_flops(step: Callable[[], None]) -> int:
    """FLOPs of one step as FlopCounterMode counts them (matmuls and convolutions, forward and backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def _union_s(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals in microseconds, in seconds: overlaps count once."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b > end:
            total += b - max(a, end)
            end = b
    return total / 1e6


def busy_share(step: Callable[[], None], s: Setup, steps: int = 3) -> float:
    """Time the device computes / wall time over ``steps`` profiled steps.

    CUDA: the union of all kernel intervals (streams that overlap count once). CPU (dry run): the
    union of the top-level operators' intervals.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    cuda = s.device.type == "cuda"
    step()
    _sync(s.device)
    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(s.device)
        wall = time.perf_counter() - t0
    if cuda:
        picked = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    else:
        picked = [e for e in prof.events() if e.device_type == DeviceType.CPU and e.cpu_parent is None]
    if not picked:
        raise RuntimeError("the profiler recorded no device activity; cannot measure the busy share")
    return _union_s([(e.time_range.start, e.time_range.end) for e in picked]) / wall


def measure(s: Setup) -> dict:
    images = _images(s)
    res: dict = {"agree": agreement(s, images)}
    configs = {"fp32 eager": (False, False, False), "bf16 + channels_last": (True, True, False),
               "bf16 + channels_last + compile": (True, True, True)}
    res["speed"] = {}
    for name, (bf16, cl, compiled) in configs.items():
        step, views = make_step(s, images, bf16, cl, compiled)
        res["speed"][name] = s.batch / seconds_per_call(step, s)
        if name == "bf16 + channels_last":  # the loop's default on CUDA: where proxy, FLOPs and busy time are read
            res["step_s"] = s.batch / res["speed"][name]
            res["proxy_s"] = seconds_per_call(views, s)
            res["flops"] = step_flops(step)
            res["busy"] = busy_share(step, s)
        del step, views
        if s.device.type == "cuda":
            torch.cuda.empty_cache()
    return res


def table(res: dict, dry_run: bool) -> tuple[str, bool]:
    """The Markdown report and whether every target is met."""
    rows, ok = [], True

    def row(check: str, value: str, target: str, passed: bool | None) -> None:
        nonlocal ok
        ok = ok and passed is not False
        rows.append(f"| {check} | {value} | {target} | {'-' if passed is None else ('PASS' if passed else 'FAIL')} |")

    worst = max(res["agree"].values())
    row("CUDA vs CPU loss (fp32)", ", ".join(f"{k} {v:.1e}" for k, v in res["agree"].items()) + " (rel. diff)",
        f"<= {AGREE_RTOL:g}", worst <= AGREE_RTOL)
    base = res["speed"]["fp32 eager"]
    row("fp32 eager", f"{base:.1f} img/s", "baseline", None)
    fast = res["speed"]["bf16 + channels_last"]
    row("bf16 + channels_last", f"{fast:.1f} img/s ({fast / base:.2f}x)", f">= {TARGET_SPEEDUP:g}x fp32 eager",
        fast / base >= TARGET_SPEEDUP)
    comp = res["speed"]["bf16 + channels_last + compile"]
    row("bf16 + channels_last + compile", f"{comp:.1f} img/s ({comp / base:.2f}x)", "reported", None)
    share = res["proxy_s"] / res["step_s"]
    row("proxy share of step", f"{100 * share:.1f}% ({1e3 * res['proxy_s']:.2f} of {1e3 * res['step_s']:.1f} ms)",
        f"<= {100 * TARGET_PROXY_SHARE:g}%", share <= TARGET_PROXY_SHARE)
    row("achieved TFLOP/s", f"{res['flops'] / res['step_s'] / 1e12:.2f} ({res['flops'] / 1e12:.3f} TFLOP per step)",
        "reported (bf16 + channels_last)", None)
    row("GPU busy", f"{100 * res['busy']:.0f}% of wall time", f">= {100 * TARGET_BUSY:g}%", res["busy"] >= TARGET_BUSY)
    head = ["| check | value | target | verdict |", "|---|---|---|---|"]
    note = ["", "dry run: CPU, tiny encoder; verdicts are not meaningful"] if dry_run else []
    return "\n".join(head + rows + note), ok


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m benchmark.tools.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="CPU, tiny encoder, 64 px, 2 iterations (for CI)")
    p.add_argument("--encoder", default="resnet50")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--agree-batch", type=int, default=4, help="images in the CUDA-vs-CPU check")
    args = p.parse_args(argv)
    print(f"command: {shlex.join(['python', '-m', 'benchmark.tools.gpu_check', *argv])}")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda or 'none'}")
    if args.dry_run:
        s = Setup(torch.device("cpu"), "test_resnet", (32, 32, 16, 16, 8), 64, 4, 2, 1, 4, "eager")
        print("device: CPU (dry run: tiny encoder, 64 px, 2 iterations; compile with the eager backend)")
    elif not torch.cuda.is_available():
        print("skipped: no CUDA device (pass --dry-run to exercise the check on the CPU)")
        return 0
    else:
        s = Setup(torch.device("cuda", 0), args.encoder, None, args.size, args.batch, args.iters, args.warmup,
                  args.agree_batch, "inductor")
        print(f"device: {torch.cuda.get_device_name(s.device)}")
    print(f"TOWER step: encoder {s.encoder}, {s.size} px, batch {s.batch}, {s.warmup} warm-up + {s.iters} timed "
          "iterations (views + loss + backward + Adam)\n")
    torch.backends.cudnn.benchmark = True
    t0 = time.perf_counter()
    report, ok = table(measure(s), args.dry_run)
    print(report)
    print(f"\n({time.perf_counter() - t0:.0f} s)")
    return 0 if ok or args.dry_run else 1


if __name__ == "__main__":
    raise SystemExit(main())
