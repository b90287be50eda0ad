"""Reports of studies: trials read back from MLflow, ranked in pandas, written as tables and HTML.

`leaderboard` loads and ranks; `display_frames` turns it into tables of strings that `text_table`,
`markdown_table` and `html` show; `csv_table` writes raw values and `latex_table` a paper's table;
`comparison` puts several studies side by side; `plots` and `html` make the HTML page; `publish`
logs the leaderboard to the study's run at the end of `smcl-tune run`.
"""
