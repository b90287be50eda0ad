"""Reports of studies: trials read back from MLflow, ranked in pandas, written as tables and HTML.

`leaderboard` loads and ranks; `tables` formats text, CSV and Markdown; `plots` and `html` make
the HTML page; `trial_files` makes a trial's own artifacts; `publish` logs the leaderboard to the
study's run at the end of `smcl-tune run`.
"""
