"""User-facing errors.

Every mistake a user can make (a bad path, a corrupt image, an unknown plugin name, a
truncated checkpoint) raises a subclass of :class:`RelightzooError`. The CLI prints its
message as one line and exits with status 1; anything else is a bug and keeps its traceback.
Set ``RELIGHTZOO_DEBUG=1`` to see the traceback of a user error too.
"""

from __future__ import annotations

__all__ = [
    "RelightzooError",
    "LightsError",
    "DataError",
    "PluginError",
    "CheckpointError",
    "TrainingError",
    "ClusterError",
    "OutputError",
    "TooFewLightsError",
]


class RelightzooError(Exception):
    """Base class of errors caused by the user's input; the message is one actionable line."""


class LightsError(RelightzooError):
    """A light direction, light file or light-selection rule is invalid."""


class DataError(RelightzooError):
    """A dataset folder, image or lights file cannot be used."""


class PluginError(RelightzooError):
    """A plugin name, argument or installation problem."""


class TooFewLightsError(PluginError):
    """A model needs more training lights than the split gives (a ptm fit needs 6). Reports
    skip such a baseline with this message instead of failing."""


class CheckpointError(RelightzooError):
    """A checkpoint file is missing, corrupt, too new or needs a plugin that is not installed."""


class TrainingError(RelightzooError):
    """Training cannot go on (a non-finite loss, a resume directory that does not match)."""


class ClusterError(RelightzooError):
    """Work cannot go past this process: a cluster engine (Ray) is missing or unreachable,
    or a distributed launch (torchrun) is set up inconsistently."""


class OutputError(RelightzooError):
    """An output file cannot be written (disk full, read-only, no permission, a bad path or format)."""
