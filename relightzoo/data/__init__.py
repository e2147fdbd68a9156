"""OLAT datasets: pixel coordinates, image and light files, the dataset, the sampler.

The public API::

    load_dataset(data, *, allow_below_horizon=False, lights_format=None) -> OLATDataset
    OLATDataset(pixels, lights, *, names=None, source=...)    .images() .describe() .subset()
    PixelLightSampler(dataset, light_indices, batch_size, *, seed=0, device="cpu").sample()
    read_lights_file(path, *, fmt=None) -> LightTable;  write_lights_file(path, dirs, fmt)
    write_dataset(folder, images, lights, *, bit_depth=8, names=None)
    BUILTIN_SCENES; pixel_grid, pixel_coordinates; lambertian_scene (a synthetic scene)
"""

from __future__ import annotations

from .builtin import BUILTIN_SCENES, builtin_path, resolve_data
from .coords import pixel_coordinates, pixel_grid
from .dataset import OLATDataset, list_images, load_dataset, load_folder
from .folder import default_names, write_dataset
from .images import read_image, write_image
from .lightfile import LIGHT_FORMATS, LightTable, read_lights_file, write_lights_file
from .sampler import PixelLightSampler
from .synthetic import lambertian_scene

__all__ = [
    "BUILTIN_SCENES",
    "LIGHT_FORMATS",
    "LightTable",
    "OLATDataset",
    "PixelLightSampler",
    "builtin_path",
    "default_names",
    "lambertian_scene",
    "list_images",
    "load_dataset",
    "load_folder",
    "pixel_coordinates",
    "pixel_grid",
    "read_image",
    "read_lights_file",
    "resolve_data",
    "write_dataset",
    "write_image",
    "write_lights_file",
]
