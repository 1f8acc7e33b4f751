"""Which measure should I trust? Tests with a known answer, on a zoo or on your own models.

* :mod:`~repscope.grounding.zoo` — the models: seeds of a CNN trained on
  Fashion-MNIST (cached), or your own activations (:func:`zoo_from_arrays`);
* :mod:`~repscope.grounding.known_answers` — the tests (layer identification,
  sensitivity and specificity to principal-component deletion, correlation
  with accuracy and output differences, layer monotonicity), each with its
  protocol and source;
* :mod:`~repscope.grounding.benchmark` — every measure on every test, with
  intervals and ranks from resampling models; ``repscope ground``.
"""

from repscope.grounding.benchmark import GroundingResult, default_measures, run_grounding
from repscope.grounding.known_answers import TESTS
from repscope.grounding.zoo import GroundingZoo, build_zoo, zoo_from_arrays

__all__ = ["TESTS", "GroundingResult", "GroundingZoo", "build_zoo", "default_measures",
           "run_grounding", "zoo_from_arrays"]
