"""Bookkeeping entries of a Ray trial's config, beside the sampled dotted-path values."""

TRIAL_KEY = "smcl_trial_key"  # stable across resumes: "optuna-<number>" or "baseline-<name>"
TRIAL_ROLE = "smcl_role"  # "search" or "baseline"
TRIAL_NAME = "smcl_trial_name"  # the MLflow run name: "trial-003", "baseline-ce"
BOOKKEEPING = (TRIAL_KEY, TRIAL_ROLE, TRIAL_NAME)


def trial_params(config: dict) -> dict:
    """The dotted-path values of a Ray trial's config (sampled values or baseline overrides)."""
    return {key: value for key, value in config.items() if key not in BOOKKEEPING}
