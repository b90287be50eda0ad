"""smcl-tune: hyperparameter studies for SMCL on long-tailed recognition."""

__version__ = "0.1.0"
