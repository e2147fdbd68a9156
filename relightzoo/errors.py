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
    "PluginConflict",
    "RecipeError",
    "GridError",
    "RenderError",
    "ViewerError",
    "ExportError",
    "PluginCheckError",
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


class RecipeError(RelightzooError):
    """An unknown recipe name, or a recipe registered twice."""


class GridError(RelightzooError):
    """The ablation grid is empty, names something unknown, or does not match a results folder."""


class RenderError(RelightzooError):
    """Rendering cannot start: mitsuba is missing, or an option is out of range."""


class ViewerError(RelightzooError):
    """The viewer cannot start (no free port, nothing to show)."""


class ExportError(RelightzooError):
    """A model or an output that cannot be exported."""


class PluginCheckError(RelightzooError):
    """A plugin failed one or more checks of the conformance kit (the message names them)."""


class PluginConflict(PluginError):
    """Two packages register the same plugin name. The plugin manager keeps the first
    provider and skips the later claim (reported as a warning naming both)."""
