"""smcl-tune: hyperparameter studies for SMCL on long-tailed recognition."""

from smcl_tune import moved_modules

__version__ = "0.1.0"

moved_modules.install()
