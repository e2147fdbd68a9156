"""The bottom layer: small jobs every other room needs, each done once.

- :mod:`~relightzoo.util.atomic`: atomic file writes (every output file goes through it);
- :mod:`~relightzoo.util.images`: float <-> integer pixels and the sRGB transfer curve;
- :mod:`~relightzoo.util.imagefile`: image file encoders (a PNG streamed band by band, a
  16-bit RGB PNG, JPEG/PNG through Pillow), all atomic;
- :mod:`~relightzoo.util.devices`: picking a torch device, a model's device, memory probes;
- :mod:`~relightzoo.util.sizes`: the one ``WxH`` size grammar;
- :mod:`~relightzoo.util.names`: name normalisation, natural sort, plural kind names.

Modules here import only :mod:`relightzoo.errors` (and numpy, torch, Pillow), never a room above.
"""
