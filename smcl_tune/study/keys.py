"""Bookkeeping entries of a Ray trial's config, beside the dotted-path values it trains with."""

TRIAL_KEY = "smcl_trial_key"  # stable across resumes: "[condition/]optuna-<n>", "[condition/]baseline-<name>..."
TRIAL_ROLE = "smcl_role"  # "search", "baseline" or "confirm"
TRIAL_NAME = "smcl_trial_name"  # the MLflow run name: "trial-003", "baseline-ce-s1 [imbalance_factor=100]"
CONDITION_KEY = "smcl_condition"  # the condition's label, "" without conditions
CONFIGURATION_KEY = "smcl_configuration"  # what a configuration's seeds share: "ce", "trial-003"
BOOKKEEPING = (TRIAL_KEY, TRIAL_ROLE, TRIAL_NAME, CONDITION_KEY, CONFIGURATION_KEY)


def trial_params(config: dict) -> dict:
    """The dotted-path values of a Ray trial's config (condition, sampled values, overrides)."""
    return {key: value for key, value in config.items() if key not in BOOKKEEPING}
