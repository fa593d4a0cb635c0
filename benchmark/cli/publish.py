"""``tower-bench publish``: check a saved weights folder, add its stored results to the card, upload it to the Hub."""
from __future__ import annotations

from benchmark.cli.options import DEFAULT_STORE, DryRun, Private, RepoId, Revision, Store, WeightsFolder


def publish_command(
    path: WeightsFolder,
    repo_id: RepoId,
    dry_run: DryRun = False,
    private: Private = False,
    revision: Revision = None,
    store: Store = DEFAULT_STORE,
) -> None:
    """Validate a weights folder from save_pretrained (strict load), fill its card's model-index from the results
    store, and push it to the Hugging Face Hub."""
    from rich.console import Console

    from benchmark.results.card_results import card_inputs
    from benchmark.results.store import ResultStore
    from zoo import UNet
    from zoo.card import model_card
    from zoo.hub import CARD_FILE, FILES, push_to_hub, validate_folder

    console = Console()
    validate_folder(path)
    net = UNet.from_pretrained(path, strict=True)  # the exact files that go up must load back
    info, commands = card_inputs(ResultStore(store), net.export_info, path)
    stored = len(info.results) - len(net.export_info.results)
    console.print(f"[green]ok[/green] {path}: {net.config.encoder} U-Net, method {info.method}, "
                  f"protocol {info.protocol_hash}; {stored} stored result(s) from {store}")
    if dry_run:
        for name in FILES:
            console.print(f"  {name}  {(path / name).stat().st_size:,} bytes")
        console.print(f"--- {CARD_FILE} as it would be uploaded to {repo_id} ---", highlight=False)
        console.print(model_card(info, repo_id, commands), markup=False, highlight=False, soft_wrap=True)
        console.print(f"dry run: nothing uploaded to {repo_id}")
        return
    url = push_to_hub(path, repo_id, private=private, revision=revision, info=info, commands=commands)
    console.print(f"uploaded to {repo_id}: {url}")
