"""The pretraining health verdict as one line, importing no torch: model cards and leaderboards print it
(``benchmark/pretraining/health.py`` measures it)."""
from __future__ import annotations


def describe(health: dict | None) -> str:
    """One line for logs, cards and leaderboard notes."""
    if not health:
        return "no health check"
    parts = []
    if "restoration_mse" in health:
        untrained = f", untrained {health['untrained_mse']:.4f}" if "untrained_mse" in health else ""
        parts.append(f"restoration MSE {health['restoration_mse']:.4f} (mean image {health['mean_image_mse']:.4f}, "
                     f"identity {health['identity_mse']:.4f}{untrained})")
    if "retrieval_top1" in health:
        free = "".join(f", {name} {100 * health[key]:.1f}%" for key, name in
                       (("pixels_top1", "raw pixels"), ("untrained_top1", "untrained")) if key in health)
        parts.append(f"retrieval top-1 {100 * health['retrieval_top1']:.0f}% of {health.get('n', '?')} "
                     f"(chance {100 * health['retrieval_chance']:.1f}%{free})")
    if "supervised_val" in health:
        parts.append(f"supervised: validation {health.get('metric', 'score')} {health['supervised_val']:.2f} "
                     f"(trivial {health['supervised_val_floor']:.2f}) on {health['supervised_images']} labelled images")
    return ("passed: " if health.get("passed") else "FAILED: ") + "; ".join(parts)
