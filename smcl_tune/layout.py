"""The names of a study store's entries, each written once: the default storage folder and what
lies in it (no imports, so the command line and the study file's schema can read them at once)."""

DEFAULT_STORAGE = "smcl-runs"  # the folder a study keeps its state in, under the current directory
MLFLOW_DATABASE = "mlflow.db"  # the embedded MLflow store of the storage's studies
ARTIFACT_FOLDER = "mlartifacts"  # their MLflow artifacts, beside the database
MLFLOW_DEFAULT_FOLDER = "mlruns"  # what MLflow itself would write without a tracking URI
OPTUNA_FILE = "optuna.db"  # a study's Optuna storage, in its record folder
STATE_FILE = "smcl-study.json"  # a study's record, in its record folder
# Names a study may not take: its record folder would collide with these.
STORE_ENTRIES = frozenset({DEFAULT_STORAGE, MLFLOW_DATABASE, ARTIFACT_FOLDER, MLFLOW_DEFAULT_FOLDER})
