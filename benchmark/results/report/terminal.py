"""A written board on the terminal: a rich table where a person watches, plain Markdown in a log or a pipe."""
from __future__ import annotations

from benchmark.core.names import display_name
from benchmark.results.leaderboard import Written, controls_line, fmt_number, fmt_p, legend, mean_std, to_markdown


def show(written: Written) -> None:
    """Print the board and the files it went to, each once; a row's name or a number never wraps."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    df, files = written.table, ", ".join(str(p) for p in written.paths)
    title = f"{df.attrs['task']} leaderboard ({df.attrs['protocol']})"
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: plain Markdown, whose rows never wrap
        print(title)
        print("\n".join(to_markdown(df, {}, "").splitlines()[2:]))
        print("wrote " + files, flush=True)
        return
    table = Table("init", "budget", "n", f"{df.attrs['metric']} (%)", "95% CI ±", f"p vs {df.attrs['reference']}",
                  "paper", "counts", "note", title=title)
    for column in table.columns:  # a narrow terminal wraps notes, never a row's name or a number
        column.overflow = "fold"
    for column in table.columns[:6]:
        column.no_wrap = True
    for row in df.itertuples():
        style = " ".join(s for s, on in (("bold", row.bold), ("underline", row.underline)) if on) or None
        counts = "–" if row.kind != "init" else ("yes" if row.counts else "no")
        name = display_name(row.init) if row.kind == "init" else row.init
        table.add_row(escape(name), escape(row.budget), str(row.n or "–"), mean_std(row) + row.stars,
                      fmt_number(row.ci), fmt_p(row.p), row.paper or "–", counts, escape(row.note),
                      style="italic" if row.kind != "init" else style)
    console.print(table)
    console.print(controls_line(df))
    console.print(legend(df))
    console.print("wrote " + files)
