"""relightzoo's own plugins, registered through the same pluggy hooks a third party uses.

Each module implements one hook with :data:`relightzoo.zoo.hookimpl` and imports the zoo's
leaf modules (``relightzoo.zoo.api``, ``relightzoo.zoo.hookspecs``, ...), the lights, the
pixel grid and the errors. The zoo's plugin manager names these modules in
:data:`relightzoo.zoo.manager.BUILTIN_MODULES` and imports them when it registers them, so
the zoo and the built-ins never import each other. A third-party plugin imports the same
names from the package (``from relightzoo.zoo import Encoder, hookimpl``): copy a module here
to start one of your own.
"""
