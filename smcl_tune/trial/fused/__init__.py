"""Fused trials: N members of one shape trained in one process as one stacked model, each member
still its own trial (its own weights, BatchNorm statistics, optimizer state, hyperparameters, seeds,
data order, metrics, checkpoint and result)."""
