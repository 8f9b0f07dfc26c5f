"""propalign_lite: propensity score alignment of unpaired multimodal data.

Data flow: ``datasets`` -> ``classifiers`` (propensity scores = logits) -> ``matchers``
(a coupling per treatment group) -> ``metrics`` / ``trainer``.
"""
from .classifiers import PropensityClassifier
from .matchers import block_coupling, match, match_groups
from .trainer import CrossModalTrainer
from .align import align  # the attribute propalign_lite.align is this function
from .alignment import Alignment

__version__ = "0.1.0"

__all__ = ["PropensityClassifier", "CrossModalTrainer", "match", "match_groups", "block_coupling", "align", "Alignment", "__version__"]
