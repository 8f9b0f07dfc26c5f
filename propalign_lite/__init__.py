"""propalign_lite: propensity score alignment of unpaired multimodal data.

Data flow: ``datasets`` -> ``classifiers`` (propensity scores = logits) -> ``matchers``
(a coupling per treatment group) -> ``metrics`` / ``trainer``.
"""
from .classifiers import PropensityClassifier
from .matchers import block_coupling, match, match_groups
from .trainer import CrossModalTrainer
from .align import align  # the attribute propalign_lite.align is this function
from .alignment import Alignment, load_alignment

align.load = load_alignment      # ``propalign_lite.align.load(path, adata1, adata2)``

__version__ = "0.1.0"

__all__ = ["PropensityClassifier", "CrossModalTrainer", "match", "match_groups", "block_coupling", "align", "Alignment",
           "load_alignment", "__version__"]
