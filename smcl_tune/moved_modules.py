"""Old names of modules that a saved study's pickles still name.

Ray pickles a study's Tuner, its searcher's state and every trial's config, and pickle names each
class by the module it was defined in. A study started before a module moved names the old module;
importing that name gives the module at its new place, so the study resumes
(tests/study/test_legacy_store.py resumes one).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

# old name -> the module that holds its pickled classes now (record format 3, before issue 36)
MOVED = {
    "smcl_tune.study_schema": "smcl_tune.studyfile.conditions",  # Condition, in every TrialSpec
    "smcl_tune.study.atomic_storage": "smcl_tune.study.whole_file_filesystem",  # Ray's storage filesystem
}


class _MovedModules:
    """A finder and loader of the old names (the import system's protocols; its ABCs cost an import)."""

    def find_spec(self, fullname, path, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module) -> None:
        pass


def install() -> None:
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(_MovedModules())
