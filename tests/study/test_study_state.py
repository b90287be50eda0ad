"""The study record: a changed study file under an existing name is refused unless --restart."""

import json

from smcl_tune.cli import main

from .conftest import tiny_study


def test_changed_study_file_is_refused_before_anything_starts(tmp_path, capsys):
    path = tiny_study(tmp_path, name="same-name")
    record = tmp_path / "smcl-runs" / "same-name"
    record.mkdir(parents=True)
    (record / "smcl-study.json").write_text(json.dumps({"fingerprint": "0123456789abcdef", "source": "old.yaml"}))
    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "study 'same-name' already exists" in error and "--restart" in error
    assert json.loads((record / "smcl-study.json").read_text())["fingerprint"] == "0123456789abcdef"
