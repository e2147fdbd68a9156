"""Exports of trained models to formats other tools open.

- :mod:`relightzoo.export.relight`: the Relight/OpenLIME web RTI layout (``info.json`` plus
  coefficient planes as images), for models that are such a basis (``ptm``, ``hsh``).
"""

from __future__ import annotations

from .relight import (
    RELIGHT_FIELDS,
    ExportError,
    evaluate_relight,
    export_relight,
    read_relight,
    relight_basis,
)

__all__ = ["RELIGHT_FIELDS", "ExportError", "evaluate_relight", "export_relight", "read_relight", "relight_basis"]
