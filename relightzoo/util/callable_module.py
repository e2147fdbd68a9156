"""Modules that can be called as the function they are named after.

``relightzoo.train``, ``relightzoo.evaluate`` and ``relightzoo.relight`` are modules, and
``rz.train``, ``rz.evaluate`` and ``rz.relight`` are the public functions of the same names
(exported lazily by ``relightzoo/__init__.py``). Whenever such a module is imported, Python's
import system sets the package's attribute to the module, so after ``import
relightzoo.recipes`` (which imports ``relightzoo.train``) ``rz.train(...)`` raised "'module'
object is not callable": what the README's Python example did depended on import order.
A module made callable here runs its function of the same name, so ``rz.train(...)`` works
whichever of the two the attribute holds.
"""

from __future__ import annotations

import sys
import types
from typing import Any

__all__ = ["make_module_callable"]


class _CallableModule(types.ModuleType):
    """A module whose call is the call of its function named like the module's last part."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__name__.rpartition(".")[2])(*args, **kwargs)


def make_module_callable(module_name: str) -> None:
    """Make the imported module ``module_name`` callable as its function of the same name
    (``relightzoo.train(...)`` is ``relightzoo.train.train(...)``)."""
    module = sys.modules[module_name]
    function = getattr(module, module_name.rpartition(".")[2], None)
    if not callable(function):
        raise TypeError(f"{module_name} has no function {module_name.rpartition('.')[2]!r} to call")
    module.__class__ = _CallableModule
