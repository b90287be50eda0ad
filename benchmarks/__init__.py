"""Benchmarks of smcl-tune: scripts that time and run the product's own training step and trainable.

Run one from the repository root, as a file or as a module:

    .venv/bin/python benchmarks/step_speed.py --steps 8
    .venv/bin/python -m benchmarks.step_speed --steps 8

Helpers the scripts share live in `benchmarks.common`.
"""
