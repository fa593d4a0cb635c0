"""The linear probe of a frozen random encoder at every feature stage, beside the ``pixels`` reference.

    python -m benchmark.tools.probe_depth --task retinamnist --data-root DIR [--image-size 28 64] [--seed 0]

Tells where a frozen encoder's features stop representing the image: each stage's feature map is average-pooled
and probed as the linear protocol probes the last one (precise-BN on the training split, standardised features,
logistic regression with its strength chosen on validation). Used for the README's measurement of why a random
ResNet-18's last stage scores far below raw pixels at 28 px; it changes nothing on disk.
"""
from __future__ import annotations

import argparse

import torch


def main(argv: list[str] | None = None) -> None:
    from benchmark.core import registry
    from benchmark.core.config import budget as get_budget
    from benchmark.finetuning.logistic import logistic_probe, pixels_reference
    from benchmark.finetuning.probe import precise_bn
    from benchmark.finetuning.scoring import run_batched
    from zoo import UNet
    from zoo.unet_config import UNetConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="retinamnist")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--image-size", type=int, nargs="+", default=[28, 64])
    ap.add_argument("--budget", default="cpu", help="the encoder and decoder of this budget")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    b, device = get_budget(args.budget), torch.device("cpu")
    print("| input | stage | features | feature map | linear AUC / score |\n|---|---|---:|---|---:|")
    for size in args.image_size:
        task = registry.make_task(args.task, args.data_root, size)
        splits = [task.load(s) for s in ("train", "val", "test")]
        torch.manual_seed(args.seed)
        net = UNet(b.encoder, task.in_chans, task.in_chans, tuple(b.decoder_channels or UNetConfig.decoder_channels))
        precise_bn(net, splits[0], 64, device, False)
        net.eval()

        def pooled_stages(x: torch.Tensor) -> torch.Tensor:
            return torch.cat([f.mean(dim=(2, 3)) for f in net.forward_features(x)], 1)

        with torch.no_grad():
            feats = [torch.cat(list(run_batched(pooled_stages, s, 64, device))) for s in splits]
            maps = net.forward_features(splits[0].images[:1].float() / 255)
        lo = 0
        for i, f in enumerate(maps):
            hi = lo + f.shape[1]
            train, val, test = ((f[:, lo:hi], split) for f, split in zip(feats, splits))
            r = logistic_probe(*train, *val, *test, task.kind, task.num_classes).record
            print(f"| {size} px | {i} | {f.shape[1]} | {f.shape[-2]}x{f.shape[-1]} | {r['value']:.2f} |", flush=True)
            lo = hi
        print(f"| {size} px | pixels (8 x 8, no network) | – | – | "
              f"{pixels_reference(*splits, task.kind, task.num_classes):.2f} |", flush=True)


if __name__ == "__main__":
    main()
