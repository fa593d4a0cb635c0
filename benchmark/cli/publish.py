"""``tower-bench publish``: check a saved weights folder, then upload it to the Hugging Face Hub."""
from __future__ import annotations

from .options import DryRun, Private, RepoId, Revision, WeightsFolder


def publish_command(
    path: WeightsFolder,
    repo_id: RepoId,
    dry_run: DryRun = False,
    private: Private = False,
    revision: Revision = None,
) -> None:
    """Validate a weights folder from save_pretrained (strict load) and push it to the Hugging Face Hub."""
    from rich.console import Console

    from zoo.hub import CARD_FILE, FILES, card_for_repo, from_pretrained, push_to_hub, validate_folder

    console = Console()
    validate_folder(path)
    net = from_pretrained(path, strict=True)  # the exact files that go up must load back
    info = net.pretrained_cfg
    console.print(f"[green]ok[/green] {path}: {net.config.encoder} U-Net, method {info.method}, "
                  f"protocol {info.protocol_hash}")
    if dry_run:
        for name in FILES:
            console.print(f"  {name}  {(path / name).stat().st_size:,} bytes")
        console.print(f"--- {CARD_FILE} as it would be uploaded to {repo_id} ---", highlight=False)
        console.print(card_for_repo(path, repo_id), markup=False, highlight=False)
        console.print(f"dry run: nothing uploaded to {repo_id}")
        return
    url = push_to_hub(path, repo_id, private=private, revision=revision)
    console.print(f"uploaded to {repo_id}: {url}")
