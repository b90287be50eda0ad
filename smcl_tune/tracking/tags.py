"""The vocabulary of the tags smcl-tune writes on MLflow runs: each name once, for writer and readers.

Plain strings: importing this module loads no MLflow."""

# Tags of the study's parent run.
STUDY_TAG = "smcl.study"
FINGERPRINT_TAG = "smcl.fingerprint"
ROLE_TAG = "smcl.role"  # "study" on the parent run; "search", "baseline" or "confirm" on a trial run
OBJECTIVE_METRIC_TAG = "smcl.objective_metric"
OBJECTIVE_MODE_TAG = "smcl.objective_mode"
OPTUNA_STORAGE_TAG = "smcl.optuna_storage"
SEARCH_TAG = "smcl.search"  # JSON list of the searched hyperparameters' plain names
CONDITIONS_TAG = "smcl.conditions"  # JSON list of the conditions' labels (empty without conditions)
BASELINES_TAG = "smcl.baselines"  # JSON list of the baselines' names, in the study file's order
RUN_STARTED_TAG = "smcl.run_started_ms"  # when the latest driver of the study started (ms since the epoch)
PLANNED_TRIALS_TAG = "smcl.planned_trials"  # every trial the study file asks for (confirmation runs included)
EPOCHS_PER_TRIAL_TAG = "smcl.epochs_per_trial"
# Tags of a trial run.
TRIAL_KEY_TAG = "smcl.trial_key"
STATE_TAG = "smcl.state"
REASON_TAG = "smcl.reason"
NODES_TAG = "smcl.nodes"
FUSED_GROUP_TAG = "smcl.fused_group"  # the fused group and slot a trial trains in, e.g. "g2/1"
IMBALANCE_FACTOR_TAG = "smcl.imbalance_factor"
MANY_ABOVE_TAG = "smcl.many_above"
FEW_BELOW_TAG = "smcl.few_below"
METHOD_TAG = "smcl.method"
CONDITION_TAG = "smcl.condition"  # the condition's label ("" without conditions)
CONFIGURATION_TAG = "smcl.configuration"  # what a configuration's seeds share: a baseline's name, "trial-003"
SEED_TAG = "smcl.seed"  # training.seed
SOURCE_TAG = "smcl.source"  # data.source
ARCHITECTURE_TAG = "smcl.architecture"  # model.architecture
SUBSET_PROTOCOL_TAG = "smcl.subset_protocol"  # data.subset_protocol
N_MAX_TAG = "smcl.n_max"  # data.n_max; "default": the source's per-class pool
PROFILE_TAG = "smcl.profile"  # data.profile: "exp" or "step"
SUBSET_SEED_TAG = "smcl.subset_seed"  # data.subset_seed
EPOCHS_TAG = "smcl.epochs"  # training.epochs: the trial's budget
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own, mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID
# The experiment tag MLflow's UI reads to open an experiment on its runs (not its GenAI overview).
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
RUN_NAME_TAG = "mlflow.runName"  # MLflow's own, mlflow.utils.mlflow_tags.MLFLOW_RUN_NAME
