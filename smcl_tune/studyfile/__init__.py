"""The study file: its schema, its conditions, its cross-checks against the trial config, the
bounded YAML loader, and the validated Study (no torch, no Ray, no MLflow)."""
