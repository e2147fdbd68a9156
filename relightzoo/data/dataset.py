"""OLAT datasets: a folder of images plus their light directions, loaded compactly.

:func:`load_dataset` accepts a folder (images + ``lights.txt``, ``lights.json`` or an RTI ``.lp``) or the
name of a built-in scene and returns an :class:`OLATDataset`: one tensor of images in the
integer type they were stored in (so 1000 images of 512 x 512 cost 0.8 GB as uint8 rather
than 3 GB as float32), one tensor of validated unit light directions, and the file names.
Float images are made on demand by :meth:`OLATDataset.images`.

Every problem with the folder is a one-line :class:`~relightzoo.errors.DataError` (or a
:class:`~relightzoo.errors.LightsError` for a bad direction) that says what to fix.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from ..lights import cartesian_to_spherical, validate_directions
from ..util.names import natural_key
from .images import IMAGE_EXTENSIONS, image_size, is_image_file, read_image
from .lightfile import LIGHT_FILE_NAMES, LightTable, read_lights_file
from .lpfile import LP_SUFFIX

__all__ = ["OLATDataset", "load_dataset", "load_folder", "list_images"]

_PROGRESS_FROM = 200
"""Show a progress bar when a folder holds at least this many images."""


class OLATDataset:
    """One-light-at-a-time images of a scene and the light direction of each.

    Attributes:
        pixels: ``[L, H, W, 3]`` tensor, ``uint8``/``uint16`` as loaded or ``float32`` in [0, 1].
        lights: ``[L, 3]`` float32 unit vectors toward each light (z up).
        names: image file names in light order (sorted).
        source: where the data came from (a folder path or a built-in scene name).
    """

    def __init__(
        self,
        pixels: torch.Tensor | np.ndarray,
        lights: torch.Tensor | np.ndarray,
        *,
        names: Sequence[str] | None = None,
        source: str = "<memory>",
        allow_below_horizon: bool = False,
    ) -> None:
        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(np.ascontiguousarray(pixels))
        if pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise DataError(f"images must have shape [L, H, W, 3], got {list(pixels.shape)}")
        if pixels.dtype not in (torch.uint8, torch.uint16, torch.float32):
            pixels = pixels.to(torch.float32)
        dirs = validate_directions(lights, allow_below_horizon=allow_below_horizon, source=f"lights of {source}")
        if len(dirs) != len(pixels):
            raise DataError(f"{source}: {len(pixels)} images but {len(dirs)} light directions")
        if names is None:
            names = [f"light_{i:04d}" for i in range(len(pixels))]
        names = list(names)
        if len(names) != len(pixels):
            raise DataError(f"{source}: {len(pixels)} images but {len(names)} names")
        self.pixels = pixels
        self.lights = torch.from_numpy(dirs.astype(np.float32))
        self.names = names
        self.source = str(source)
        self.allow_below_horizon = allow_below_horizon
        self.lights_file: str | None = None

    # -- shape ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])

    @property
    def bit_depth(self) -> int:
        """8 or 16 for integer images, 32 for float32 ones."""
        return {torch.uint8: 8, torch.uint16: 16}.get(self.pixels.dtype, 32)

    @property
    def max_value(self) -> float:
        """The stored value that stands for 1.0 (255, 65535 or 1.0)."""
        return {torch.uint8: 255.0, torch.uint16: 65535.0}.get(self.pixels.dtype, 1.0)

    @property
    def device(self) -> torch.device:
        return self.pixels.device

    def __repr__(self) -> str:
        return (
            f"OLATDataset({len(self)} lights, {self.width}x{self.height}, "
            f"{self.bit_depth}-bit, source={self.source!r})"
        )

    # -- data ----------------------------------------------------------------------------

    def images(self, indices: Sequence[int] | np.ndarray | torch.Tensor | None = None) -> torch.Tensor:
        """Float32 images ``[l, H, W, 3]`` in [0, 1] for ``indices`` (all when None)."""
        px = self.pixels if indices is None else self.pixels[_as_index(indices, self.pixels.device)]
        if px.dtype == torch.float32:
            return px.clone() if indices is None else px
        return px.to(torch.float32).mul_(1.0 / self.max_value)

    def spherical(self) -> torch.Tensor:
        """Light directions as ``[L, 2]`` (polar phi, azimuth theta) in radians."""
        return cartesian_to_spherical(self.lights)

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> "OLATDataset":
        """A dataset of the lights at ``indices`` (in that order), sharing nothing mutable."""
        idx = _as_index(indices, self.pixels.device)
        sub = OLATDataset(
            self.pixels[idx],
            self.lights[idx.cpu()],
            names=[self.names[int(i)] for i in idx.cpu()],
            source=self.source,
            allow_below_horizon=True,
        )
        sub.allow_below_horizon = self.allow_below_horizon
        sub.lights_file = self.lights_file
        return sub

    def to(self, device: torch.device | str) -> "OLATDataset":
        """This dataset with its pixels on ``device`` (lights stay on the CPU; they are tiny)."""
        if torch.device(device) == self.pixels.device:
            return self
        out = object.__new__(OLATDataset)
        out.__dict__.update(self.__dict__)
        out.pixels = self.pixels.to(device)
        return out

    def describe(self) -> dict:
        """A JSON-ready summary: count, resolution, bit depth and light coverage in degrees."""
        sph = np.degrees(cartesian_to_spherical(self.lights.double().numpy()))
        polar, azimuth = sph[:, 0], sph[:, 1]
        return {
            "source": self.source,
            "lights_file": self.lights_file,
            "count": len(self),
            "height": self.height,
            "width": self.width,
            "resolution": f"{self.width}x{self.height}",
            "bit_depth": self.bit_depth,
            "dtype": str(self.pixels.dtype).replace("torch.", ""),
            "memory_mb": round(self.pixels.numel() * self.pixels.element_size() / 2**20, 2),
            "polar_deg": [round(float(polar.min()), 4), round(float(polar.max()), 4)],
            "azimuth_deg": [round(float(azimuth.min()), 4), round(float(azimuth.max()), 4)],
            "spacing_deg": round(_median_spacing_deg(self.lights.double().numpy()), 3),
        }


def _as_index(indices, device: torch.device) -> torch.Tensor:
    idx = indices if isinstance(indices, torch.Tensor) else torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return idx.to(device=device, dtype=torch.long).reshape(-1)


def _median_spacing_deg(dirs: np.ndarray) -> float:
    """Median angle from each light to its nearest neighbour (0 for a single light)."""
    n = len(dirs)
    if n < 2:
        return 0.0
    nearest = np.empty(n)
    for start in range(0, n, 1024):  # bounded memory for large light stages
        cos = dirs[start : start + 1024] @ dirs.T
        cos[np.arange(len(cos)), np.arange(start, start + len(cos))] = -2.0
        nearest[start : start + 1024] = cos.max(axis=1)
    return float(np.degrees(np.median(np.arccos(np.clip(nearest, -1.0, 1.0)))))


# -- loading -----------------------------------------------------------------------------


def list_images(folder: str | Path) -> list[str]:
    """Image file names in ``folder`` (PNG/JPEG, hidden files skipped) in natural order.

    Numbers in names sort by value (``img_2.png`` before ``img_10.png``): the order the lines
    of a ``lights.txt`` pair with. Zero-padded names (``light_0002.png``) sort the same as text.
    """
    folder = Path(folder)
    return sorted(
        (p.name for p in folder.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith(".")),
        key=image_order,
    )


def image_order(name: str) -> tuple:
    """Sort key of image names: natural order (numbers by value), ties (``01``/``1``) by the text."""
    return (natural_key(name), name)


def _find_lights_file(folder: Path) -> Path:
    found = [folder / n for n in LIGHT_FILE_NAMES if (folder / n).is_file()]
    lp = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == LP_SUFFIX and not p.name.startswith("."))
    if len(lp) > 1:
        raise DataError(f"{folder} holds {len(lp)} .lp files ({', '.join(p.name for p in lp)}); keep the one that describes these images")
    found += lp
    if not found:
        raise DataError(
            f"no lights file in {folder}: expected {', '.join(LIGHT_FILE_NAMES)} or an RTI .lp file with one direction per image"
        )
    if len(found) > 1:
        warnings.warn(f"{folder} holds both {found[0].name} and {found[1].name}; using {found[0].name}", stacklevel=3)
    return found[0]


def _match_lights(table: LightTable, names: list[str], folder: Path) -> np.ndarray:
    """The directions of ``table`` in the order of ``names``."""
    fname = table.path.name
    if table.names is None:
        if len(table.dirs) != len(names):
            raise DataError(
                f"{fname} has {len(table.dirs)} light directions but {folder} has {len(names)} images; "
                "it needs one line per image, in sorted file-name order"
            )
        return table.dirs
    if table.lines is not None:
        return _match_by_base_name(table, names, folder)
    by_name = dict(zip(table.names, table.dirs))
    unknown = [n for n in table.names if n not in set(names)]
    if unknown:
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise DataError(f"{fname} names {unknown[0]}{more}, which is not an image in {folder}")
    missing = [n for n in names if n not in by_name]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{fname} has no direction for image {missing[0]}{more}")
    return np.stack([by_name[n] for n in names])


def _match_by_base_name(table: LightTable, names: list[str], folder: Path) -> np.ndarray:
    """The directions of an ``.lp`` table in the order of ``names``: lines name images by base
    name, matched exactly, else ignoring case (captures made on Windows mix the two)."""
    fname = table.path.name
    exact = set(names)
    folded: dict[str, list[str]] = {}
    for n in names:
        folded.setdefault(n.lower(), []).append(n)
    by_image: dict[str, np.ndarray] = {}
    for name, lineno, d in zip(table.names, table.lines, table.dirs):
        image = name if name in exact else (folded.get(name.lower(), [None])[0] if len(folded.get(name.lower(), [])) == 1 else None)
        if image is None:
            raise DataError(f"{fname} line {lineno} names {name}, which is not an image in {folder}")
        by_image[image] = d
    missing = [n for n in names if n not in by_image]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(f"{fname} has no line for image {missing[0]}{more}; list every image of {folder} in it")
    return np.stack([by_image[n] for n in names])


def _check_sizes(folder: Path, names: list[str]) -> tuple[int, int]:
    """Read every image header and make sure all images share one size; returns (H, W)."""
    first = image_size(folder / names[0])
    for name in names[1:]:
        size = image_size(folder / name)
        if size != first:
            raise DataError(
                f"images have different sizes: {names[0]} is {first[1]}x{first[0]} but {name} is "
                f"{size[1]}x{size[0]} (width x height)"
            )
    return first


def _read_all(folder: Path, names: list[str], height: int, width: int) -> np.ndarray:
    """Decode every image into one ``[L, H, W, 3]`` array (uint16 if any image is 16-bit)."""
    from ..console import make_progress

    out: np.ndarray | None = None
    with make_progress(transient=True, disable=len(names) < _PROGRESS_FROM) as progress:
        task = progress.add_task("loading images", total=len(names))
        for i, name in enumerate(names):
            img = read_image(folder / name)
            if img.shape[:2] != (height, width):  # header and decoded data disagree
                raise DataError(f"image {name} decodes to {img.shape[1]}x{img.shape[0]}, not {width}x{height}")
            if out is None:
                out = np.empty((len(names), height, width, 3), dtype=img.dtype)
            elif img.dtype != out.dtype:
                if img.dtype == np.uint16:  # mixed 8/16 bit: promote everything to 16 bit exactly
                    out = out.astype(np.uint16) * np.uint16(257)
                else:
                    img = img.astype(np.uint16) * np.uint16(257)
            out[i] = img
            progress.advance(task)
    assert out is not None
    return out


def load_folder(
    folder: str | Path,
    *,
    allow_below_horizon: bool = False,
    lights_format: str | None = None,
    source: str | None = None,
) -> OLATDataset:
    """Load a dataset folder: PNG/JPEG images plus ``lights.txt``, ``lights.json`` or one RTI ``*.lp`` file."""
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"dataset folder {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"{folder} is a file, not a dataset folder (images plus lights.txt or lights.json)")
    names = list_images(folder)
    if not names:
        exts = ", ".join(IMAGE_EXTENSIONS)
        raise DataError(f"no images in {folder}: expected PNG or JPEG files ({exts}) plus lights.txt, lights.json or an .lp file")
    lights_path = _find_lights_file(folder)
    table = read_lights_file(lights_path, fmt=lights_format, allow_below_horizon=allow_below_horizon)
    dirs = _match_lights(table, names, folder)
    height, width = _check_sizes(folder, names)
    dirs = validate_directions(dirs, allow_below_horizon=allow_below_horizon, source=lights_path.name)
    pixels = _read_all(folder, names, height, width)
    ds = OLATDataset(
        torch.from_numpy(pixels), dirs, names=names, source=source or str(folder), allow_below_horizon=True
    )
    ds.allow_below_horizon = allow_below_horizon
    ds.lights_file = lights_path.name
    return ds


def load_dataset(
    data: str | Path,
    *,
    allow_below_horizon: bool = False,
    lights_format: str | None = None,
) -> OLATDataset:
    """Load DATA: a dataset folder, or the name of a built-in scene such as ``demo``.

    A folder holds PNG/JPEG images (8 or 16 bit) and ``lights.txt`` (one direction per image
    in sorted file-name order) or ``lights.json`` (file name -> direction). ``lights_format``
    (``cartesian``, ``spherical``, ``spherical-deg``) overrides what the light file's header
    says. Directions below the horizon are an error unless ``allow_below_horizon``.
    """
    from .builtin import resolve_data

    folder, source = resolve_data(data)
    return load_folder(folder, allow_below_horizon=allow_below_horizon, lights_format=lights_format, source=source)
