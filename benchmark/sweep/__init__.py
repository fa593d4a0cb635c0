"""A sweep of jobs: planned from a spec (pretrain once, fine-tune each seed) and launched inline, locally or on SLURM."""
