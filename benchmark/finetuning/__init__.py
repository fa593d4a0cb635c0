"""The downstream protocols (finetune, linear, knn), their training loop, inits, scoring and metrics."""
