"""The ground every layer stands on: typed configs and budgets, the registry of names, the optimizer schedule, the
hardware it runs on. Imports no other benchmark layer but ``errors`` (and ``tasks`` lazily, by registry string)."""
