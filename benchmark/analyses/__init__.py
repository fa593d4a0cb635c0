"""The paper's analyses beyond the main leaderboard, one module each (``tower-bench analyse ...``).

Each reads the results store (running only what is missing through ``benchmark.sweep.run``) and writes
Markdown + CSV + PNG into ``leaderboards/``, stamped with the command, budget, data and date.
"""
