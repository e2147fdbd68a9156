"""Gabor-wavelet and Gaussian activation backbones for relightzoo (a third-party plugin).

relightzoo finds them through the entry point declared in this package's pyproject.toml;
nothing here needs to be imported by hand.
"""

__version__ = "0.1.0"
