"""Pretraining: the one loop for every method, its batches, DDP runtime, checkpoints, health check and views."""
