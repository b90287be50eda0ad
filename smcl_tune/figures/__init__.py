"""A trial's pictures and tables (matplotlib's object API): drawn by the trial beside its checkpoint,
shown again by the reports."""
