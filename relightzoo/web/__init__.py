"""Relighting on the web: the live viewer (``relightzoo view``) and what it shares with export.

- :mod:`relightzoo.web.basis`: a model written as per-pixel coefficient planes and a light
  basis (``image(x, w) = sum_k P_k(x) f_k(w)``) that a browser can evaluate, for models that
  are such a basis (``ptm``, ``hsh``, ``rbf``, ``low-rank`` with a pixel table).
- :mod:`relightzoo.web.envmaps`: small built-in environment maps for the viewer's picker.
- :mod:`relightzoo.web.server`: the local HTTP server behind ``relightzoo view``.
- ``relightzoo/web/static/``: the page (HTML, JavaScript, CSS), shipped inside the package:
  the viewer works offline and loads nothing from elsewhere.
"""

from __future__ import annotations

__all__: list[str] = []
