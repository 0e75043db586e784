"""The choices and defaults of the API's options, for front-ends to offer and show.

The CLI builds its ``click.Choice`` lists and ``show_default`` values from these, and
the page its menus, so a new classifier kind or format appears everywhere at once.
"""

from audioscan.indexer.store.records import CHANNEL_MODES
from audioscan.indexer.store.segments import DEFAULT_DTYPE, VECTOR_DTYPES
from audioscan.query.classifier import KINDS as CLASSIFIER_KINDS
from audioscan.query.clips import CLIP_FORMATS
from audioscan.query.formats import TEXT_FORMATS as MOMENT_FORMATS
from audioscan.query.rescore import DEFAULT_THRESHOLD
from audioscan.query.training import CHOICES as NORMALIZATIONS
from audioscan.query.training import NEG_MARGIN, NEGATIVE_SOURCES, TOLERANCE

__all__ = ["CHANNEL_MODES", "CLASSIFIER_KINDS", "CLIP_FORMATS", "DEFAULT_DTYPE", "DEFAULT_THRESHOLD", "MOMENT_FORMATS",
           "NEGATIVE_SOURCES", "NEG_MARGIN", "NORMALIZATIONS", "TOLERANCE", "VECTOR_DTYPES"]
