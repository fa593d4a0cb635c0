"""TOWER: knowledge-based proxy tasks (proxy.py) and the contrastive + generative method (method.py)."""
