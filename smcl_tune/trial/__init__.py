"""One trial, in the shape of torchvision's classification reference: `run_trial(config)` wires
data, model, SMCL steps, validation, checkpoints and the trial's files. It runs without Ray."""
