"""Studies: a TOML spec → extraction → all-pairs comparison → report."""

from repscope.study.runner import StudyOutcome, run_studies, run_study
from repscope.study.spec import ModelSpec, StudySpec, StudySpecError, load_study, parse_study

__all__ = [
    "ModelSpec",
    "StudyOutcome",
    "StudySpec",
    "StudySpecError",
    "load_study",
    "parse_study",
    "run_studies",
    "run_study",
]
