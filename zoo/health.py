"""The pretraining health verdict as one line, importing no torch: model cards and leaderboards print it
(``benchmark/health.py`` measures it)."""
from __future__ import annotations


def describe(health: dict | None) -> str:
    """One line for logs, cards and leaderboard notes."""
    if not health:
        return "no health check"
    parts = []
    if "restoration_mse" in health:
        parts.append(f"restoration MSE {health['restoration_mse']:.4f} (mean image {health['mean_image_mse']:.4f}, "
                     f"identity {health['identity_mse']:.4f})")
    if "retrieval_top1" in health:
        parts.append(f"retrieval top-1 {100 * health['retrieval_top1']:.0f}% "
                     f"(chance {100 * health['retrieval_chance']:.1f}%)")
    return ("passed: " if health.get("passed") else "FAILED: ") + "; ".join(parts)
