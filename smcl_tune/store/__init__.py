"""A study's stores read without Ray: where they are, the study record and the lock, their health,
consistent copies, relocation, MLflow's runs read back, and where a study stands."""
