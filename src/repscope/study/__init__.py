"""Studies: a TOML spec → extraction → all-pairs comparison → report."""

from .runner import StudyOutcome, run_studies, run_study
from .spec import ModelSpec, StudySpec, StudySpecError, load_study, parse_study

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
