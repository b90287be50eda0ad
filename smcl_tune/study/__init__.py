"""Studies on Ray Tune: the only package that imports Ray.

`runner.run_study` drives a study; `trainable.train_study_trial` is what Ray runs in a worker
(it imports neither Optuna nor MLflow).
"""
