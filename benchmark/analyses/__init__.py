"""``tower-bench analyse ...``: the paper's analyses beyond the main leaderboard, one module each.

Each reads the results store (running only what is missing through ``benchmark.run``) and writes
Markdown + CSV + PNG into ``leaderboards/``, stamped with the command, budget, data and date.
"""
import typer

from .ablation import ablation_command
from .convergence import convergence_command
from .label_efficiency import label_efficiency_command
from .mixing import mixing_command
from .representations import representations_command

app = typer.Typer(help="Analyses: ablation (Table 2), label efficiency (Fig. 11), convergence (Fig. 6/7), "
                  "encoder/decoder mixing (Fig. 7), representations (Fig. 10).", no_args_is_help=True)
app.command("ablation")(ablation_command)
app.command("label-efficiency")(label_efficiency_command)
app.command("convergence")(convergence_command)
app.command("mixing")(mixing_command)
app.command("representations")(representations_command)
