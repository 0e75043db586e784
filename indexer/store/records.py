"""What the store records, as plain values: sets, media rows, and one commit's changes."""

from __future__ import annotations

import datetime as dt
from dataclasses import KW_ONLY, dataclass, field

import numpy as np

from audioscan.indexer.media.windows import WindowSpec


# The weights identity of a set imported from another tool (see ``SetInfo.foreign``).
FOREIGN_WEIGHTS = "imported-"
# How a set hears a multichannel file: one mono downmix (every set's default), or each channel apart.
MIX, SPLIT = "mix", "split"
CHANNEL_MODES = (MIX, SPLIT)
# A window's or a label's channel: 0 is the mix (for a label, the whole file), else a channel's number from 1.
MIX_CHANNEL = 0


@dataclass(frozen=True)
class SetInfo:
    """An embedding set as the catalog records it."""

    id: int
    name: str
    _: KW_ONLY
    model: str
    weights_id: str
    window: float
    hop: float
    sample_rate: int
    dim: int
    dtype: str
    channels: str = "mix"  # 'mix': one mono downmix of every file; 'split': each channel its own stream

    @property
    def split(self) -> bool:
        """Each channel of a file is its own stream (``index build --channels split``)."""
        return self.channels == SPLIT

    @property
    def foreign(self) -> bool:
        """Vectors imported from another tool, of a model audioscan does not run (or whose weights it
        cannot name): no build fills the set, and its windows are cut as that tool cut them."""
        return self.weights_id.startswith(FOREIGN_WEIGHTS)

    @property
    def window_spec(self) -> WindowSpec:
        return WindowSpec(self.window, self.hop)

    def window_samples(self) -> tuple[int, int]:
        """(window, hop) in samples at the set's rate."""
        return self.window_spec.samples(self.sample_rate)


@dataclass(frozen=True)
class MediaRow:
    """A media file's catalog row; ``status`` is ok, failed or missing."""

    id: int
    root_id: int
    _: KW_ONLY
    path: str
    size: int | None
    mtime_ns: int | None
    fingerprint: str | None
    duration: float | None
    status: str
    error: str | None = None
    retry: bool = False  # a failure worth another try while the file is unchanged (it could not be read)
    fps: float | None = None  # a video's frame rate, for timecodes
    # When the recording started, as a build found it (``media.recorded``): the clock's wall time, its zone,
    # and the source; source None: not looked for yet (a file indexed before times were), 'none': looked, none.
    recorded_local: dt.datetime | None = None
    recorded_zone: str | None = None
    recorded_source: str | None = None


@dataclass(frozen=True, kw_only=True)
class NewLabel:
    """A label to store: a range (or a point ``marker``: ``start == end``) of one media file that does
    (``positive``) or does not hold the sound ``label``, on one ``channel`` (0: the whole file)."""

    media_id: int
    label: str
    start: float
    end: float
    kind: str  # range | marker
    positive: bool
    channel: int = MIX_CHANNEL


@dataclass(frozen=True)
class FileVectors:
    """All window vectors of one media file in one set, with the windows' times in seconds."""

    media_id: int
    set_id: int
    _: KW_ONLY
    starts: np.ndarray
    ends: np.ndarray
    vectors: np.ndarray
    channels: np.ndarray | None = None  # each window's channel (from 1) in a split set; None: the mix

    def channel_column(self) -> np.ndarray:
        """Each window's channel as the catalog keeps it (0: the mix)."""
        if self.channels is None:
            return np.full(len(self.starts), MIX_CHANNEL, np.int16)
        return self.channels.astype(np.int16, copy=False)


@dataclass(frozen=True)
class Commit:
    """Everything one atomic commit changes.

    ``retire`` lists (media id, set id or None for every set) whose current windows
    die in this commit - a file that changed, failed or disappeared.
    """

    media: list[MediaRow] = field(default_factory=list)
    retire: list[tuple[int, int | None]] = field(default_factory=list)
    _: KW_ONLY
    vectors: list[FileVectors] = field(default_factory=list)
    non_media: list[tuple[int, str, int, int]] = field(default_factory=list)

    def windows(self) -> int:
        return sum(len(item.starts) for item in self.vectors)

    def __bool__(self) -> bool:
        return bool(self.media or self.retire or self.vectors or self.non_media)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
