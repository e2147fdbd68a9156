"""The Relight/OpenLIME web RTI layout: ``info.json`` plus coefficient planes as images.

Written from the format's published description (the "Relight web format" section of
CNR-ISTI's Relight README, and the HSH functions of its Web3D 2018 presentation):

- a folder holding ``info.json`` and images ``plane_0.jpg``, ``plane_1.jpg``, ...; each image
  holds three coefficient planes (its R, G and B channels), so ``nplanes`` is three times the
  number of images;
- ``info.json`` fields (all documented): ``width``, ``height``, ``format`` (the images'
  extension), ``type`` (the light basis), ``colorspace``, ``nplanes``, ``lights``,
  ``materials`` (``scale``, ``bias``, ``range`` per plane) and the same ``scale``/``bias``/
  ``range`` at the top level; ``sigma``, ``resolution`` and ``basis`` belong to the sampled
  types (rbf, bilinear, ycc), which this export does not write;
- a stored value ``c`` in [0, 1] (the 8-bit pixel / 255) means the coefficient ``(c - bias) * scale``.

What is written, in the ``rgb`` colour space (every channel has its own coefficients; image
``i`` holds term ``i`` of R, G and B):

========  =================  ====================================================================
model     type, nplanes      light basis (``u, v, w`` the light direction's x, y, z)
========  =================  ====================================================================
``ptm``   ``ptm``, 18         ``1, u, v, u^2, uv, v^2``
``hsh``   ``hsh``, 27         H0 .. H8, the hemispherical harmonics up to degree 2 (order <= 2)
========  =================  ====================================================================

A model whose light response is something else (``rbf``'s kernel over its training lights,
``low-rank``'s network, a coordinate network) cannot be written exactly in these types and
gets a one-line :class:`ExportError` saying so. Each plane is quantised to 8 bits over its
own range (``scale = max - min``, ``bias = -min / scale``), so the error of a rendered value
is at most half a quantisation step of each plane times the basis value there:
:func:`evaluate_relight` reads a folder back and renders it, the way a viewer does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ExportError

__all__ = ["RELIGHT_FIELDS", "ExportError", "relight_basis", "relight_planes", "export_relight", "read_relight",
           "evaluate_relight", "IMAGE_FORMATS"]

RELIGHT_FIELDS = frozenset({"width", "height", "format", "type", "nplanes", "resolution", "colorspace", "sigma",
                            "lights", "materials", "scale", "bias", "range", "basis"})
"""The ``info.json`` fields the Relight web format documents."""

IMAGE_FORMATS = ("jpg", "png")
"""Plane image formats written: JPEG (as Relight writes by default) or lossless PNG."""

_TERMS = {"ptm": 6, "hsh": 9}


def relight_basis(kind: str, dirs: np.ndarray) -> np.ndarray:
    """The light basis of Relight type ``kind`` at unit directions ``dirs [N, 3]``: ``[N, T]`` float64.

    ``ptm``: ``1, u, v, u^2, uv, v^2``. ``hsh``: H0..H8 as the Relight presentation gives
    them, with ``cos(theta) = z`` the polar angle's cosine and ``phi`` the azimuth.
    """
    d = np.asarray(dirs, dtype=np.float64).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    x, y, z = d[:, 0], d[:, 1], d[:, 2]
    if kind == "ptm":
        return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], -1)
    if kind == "hsh":
        ct = np.clip(z, 0.0, 1.0)
        phi = np.arctan2(y, x)
        s = np.sqrt(np.maximum(ct - ct * ct, 0.0))
        pi = math.pi
        return np.stack([
            np.full_like(x, 1 / math.sqrt(2 * pi)),
            math.sqrt(6 / pi) * np.cos(phi) * s,
            math.sqrt(3 / (2 * pi)) * (2 * ct - 1),
            math.sqrt(6 / pi) * s * np.sin(phi),
            math.sqrt(30 / pi) * np.cos(2 * phi) * (-ct + ct * ct),
            math.sqrt(30 / pi) * np.cos(phi) * (2 * ct - 1) * s,
            math.sqrt(5 / (2 * pi)) * (1 - 6 * ct + 6 * ct * ct),
            math.sqrt(30 / pi) * (2 * ct - 1) * s * np.sin(phi),
            math.sqrt(30 / pi) * (-ct + ct * ct) * np.sin(2 * phi),
        ], -1)
    raise ExportError(f"unknown Relight type {kind!r}; this export writes {', '.join(_TERMS)}")


def _probe_dirs(n: int = 400) -> np.ndarray:
    """Directions spread over the upper hemisphere (a Fibonacci spiral), for fitting basis changes."""
    i = np.arange(n) + 0.5
    z = 1 - i / n
    r = np.sqrt(1 - z * z)
    a = i * math.pi * (3 - math.sqrt(5))
    return np.stack([r * np.cos(a), r * np.sin(a), z], -1)


def _change_of_basis(model_basis, kind: str, name: str) -> np.ndarray:
    """``A [T_model, T_relight]`` with ``f_model(w) = A @ f_relight(w)`` exactly, or an ExportError."""
    dirs = _probe_dirs()
    ours = np.asarray(model_basis(torch.as_tensor(dirs)).double().cpu().numpy())
    theirs = relight_basis(kind, dirs)
    a_t, *_ = np.linalg.lstsq(theirs, ours, rcond=None)  # theirs @ A^T = ours
    residual = float(np.abs(theirs @ a_t - ours).max())
    if residual > 1e-8 * max(1.0, float(np.abs(ours).max())):
        raise ExportError(f"{name}: its light basis is not a combination of Relight's {kind} basis (residual {residual:.2g})")
    return a_t.T


def relight_planes(model: Any, name: str | None = None) -> tuple[str, np.ndarray]:
    """``(type, planes [T, 3, H, W] float64)``: ``model`` in a Relight basis, or an ExportError saying why not."""
    name = name or type(model).__name__
    label = f"model {name!r}"
    coefficients = getattr(model, "coefficients", None)
    basis = getattr(model, "basis", None)
    cls = type(model).__name__
    if cls in ("PTMModel", "HSHModel") and isinstance(coefficients, torch.Tensor) and callable(basis):
        if coefficients.dim() != 4 or coefficients.shape[0] == 0:
            raise ExportError(f"{label} is not fitted; export a trained checkpoint")
        kind = "ptm" if cls == "PTMModel" else "hsh"
        if kind == "hsh" and int(getattr(model, "order", 0)) > 2:
            raise ExportError(
                f"{label} has order {model.order} ({coefficients.shape[0]} terms); Relight's hsh type documents "
                "9 terms (order 2): fit hsh with --model-arg order=2 to export it"
            )
        a = _change_of_basis(lambda d: basis(d.to(coefficients.device)), kind, label)
        planes = np.einsum("mr,mchw->rchw", a, coefficients.detach().double().cpu().numpy())
        return kind, planes
    why = {
        "RBFModel": "its light response is a Gaussian kernel over its own training lights, which Relight's rbf "
                    "type evaluates with its own sampled 8-bit basis and kernel, not exactly this model",
        "LowRankModel": "its light response V(w) is a neural network, which no Relight type evaluates",
    }.get(cls, "it is not a per-pixel light basis (a coordinate network or an image-based model)")
    raise ExportError(f"{label} cannot be exported to the Relight web format: {why}; ptm and hsh (order <= 2) can")


def _quantise(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """One plane ``[H, W]`` to 8 bits over its range: ``(uint8, scale, bias)``, value = (c - bias) * scale."""
    lo, hi = float(values.min()), float(values.max())
    scale = hi - lo if hi > lo else 1.0
    bias = -lo / scale
    q = np.round(np.clip((values - lo) / scale, 0.0, 1.0) * 255.0).astype(np.uint8)
    return q, scale, bias


def export_relight(
    model: Any,
    out: str | Path,
    *,
    name: str | None = None,
    lights: np.ndarray | Sequence[Sequence[float]] | None = None,
    image_format: str = "jpg",
    quality: int = 95,
) -> dict:
    """Write ``model`` to the folder ``out`` in the Relight web layout; returns the ``info.json`` dict.

    ``lights`` (the captured light directions, optional) go into ``info.json``. JPEG planes
    are written at ``quality`` with no chroma subsampling; PNG planes are lossless.
    """
    from PIL import Image

    from ..util.atomic import write_image_atomic, write_text_atomic

    if image_format not in IMAGE_FORMATS:
        raise ExportError(f"image format {image_format!r}: use one of {', '.join(IMAGE_FORMATS)}")
    kind, planes = relight_planes(model, name)
    terms, _, height, width = planes.shape
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} is a file; give a folder to write info.json and the planes into")
    out.mkdir(parents=True, exist_ok=True)
    scales, biases = [], []
    for t in range(terms):
        channels = []
        for c in range(3):
            q, scale, bias = _quantise(planes[t, c])
            channels.append(q)
            scales.append(scale)
            biases.append(bias)
        img = Image.fromarray(np.stack(channels, -1))
        plane = out / f"plane_{t}.{image_format}"
        if image_format == "jpg":
            write_image_atomic(plane, img, format="JPEG", quality=int(quality), subsampling=0)
        else:
            write_image_atomic(plane, img)
    info: dict[str, Any] = {
        "width": int(width),
        "height": int(height),
        "format": image_format,
        "type": kind,
        "colorspace": "rgb",
        "nplanes": 3 * terms,
        "materials": [{"scale": scales, "bias": biases, "range": scales}],
        "scale": scales,
        "bias": biases,
        "range": scales,
    }
    if lights is not None:
        info["lights"] = [round(float(v), 7) for v in np.asarray(lights, dtype=np.float64).reshape(-1)]
    write_text_atomic(out / "info.json", json.dumps(info, indent=1) + "\n")
    return info


def read_relight(folder: str | Path) -> tuple[dict, np.ndarray]:
    """Read a Relight web folder: ``(info, coefficients [nplanes, H, W] float64)``, dequantised."""
    from PIL import Image

    folder = Path(folder)
    try:
        info = json.loads((folder / "info.json").read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"cannot read {folder / 'info.json'}: {exc}") from None
    material = (info.get("materials") or [{}])[0]
    scale = np.asarray(material.get("scale", info.get("scale")), dtype=np.float64)
    bias = np.asarray(material.get("bias", info.get("bias")), dtype=np.float64)
    n = int(info["nplanes"])
    planes = np.empty((n, int(info["height"]), int(info["width"])), dtype=np.float64)
    for i in range(-(-n // 3)):
        img = np.asarray(Image.open(folder / f"plane_{i}.{info['format']}").convert("RGB"), dtype=np.float64) / 255.0
        for c in range(3):
            if 3 * i + c < n:
                planes[3 * i + c] = (img[..., c] - bias[3 * i + c]) * scale[3 * i + c]
    return info, planes


def evaluate_relight(info: dict, planes: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Images ``[N, H, W, 3]`` (unclamped) of a read-back folder under unit light directions ``dirs``."""
    if info.get("colorspace") != "rgb" or info.get("type") not in _TERMS:
        raise ExportError(f"evaluating {info.get('type')}/{info.get('colorspace')} is not supported; ptm and hsh in rgb are")
    f = relight_basis(info["type"], dirs)  # [N, T]
    terms = f.shape[1]
    coeff = planes[: 3 * terms].reshape(terms, 3, *planes.shape[1:])  # term-major: image t = term t's R, G, B
    return np.einsum("nt,tchw->nhwc", f, coeff)
