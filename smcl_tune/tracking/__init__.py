"""MLflow: the tags smcl-tune writes (tags.py, no MLflow import) and the driver's writer (writer.py)."""
