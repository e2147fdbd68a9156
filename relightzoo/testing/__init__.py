"""The conformance kit: the named checks every relightzoo plugin must pass.

As scikit-learn's ``check_estimator`` is for estimators, :func:`check_plugin` is for an
encoder, activation or model, built-in or third-party::

    from relightzoo.testing import check_plugin

    for result in check_plugin("model", "ptm"):
        print(result.check, "ok" if result.passed else f"FAILED: {result.message}")

    assert_plugin_passes("model", "ptm")      # in a plugin's own test suite

or from a shell, ``relightzoo plugins check ptm``. The checks (:data:`CHECKS`) build the
plugin from its defaults and from a spec, round-trip its spec through JSON, fit it on a
small real scene (a crop of the shipped demo scene, :func:`kit_scene`), render it at its
size, at another and in chunks, reload its checkpoint in another Python process and
compare, compare a one-pass environment map with the sum of single renders (models that
offer one), feed it bad arguments and look for pickles in what it saved.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import PluginCheckError
from .checks import CHECKS, CheckResult, run_checks
from .scene import kit_scene

__all__ = ["CHECKS", "CheckResult", "PluginCheckError", "check_plugin", "assert_plugin_passes", "kit_scene"]


def check_plugin(kind: str, name: str, *, checks: tuple[str, ...] | list[str] | None = None) -> Iterator[CheckResult]:
    """Run the kit on the ``kind`` plugin ``name`` (as registered), yielding one
    :class:`CheckResult` per check as it finishes. ``checks`` picks some by name (the
    checks they depend on still run, unreported)."""
    from ..zoo.factory import _kind

    return run_checks(_kind(kind), name, None if checks is None else tuple(checks))


def assert_plugin_passes(kind: str, name: str) -> list[CheckResult]:
    """Run every check; raise :class:`PluginCheckError` naming each failed check, else
    return the results."""
    results = list(check_plugin(kind, name))
    failed = [r for r in results if not r.passed]
    if failed:
        raise PluginCheckError(f"{kind} {name!r} failed " + "; ".join(f"{r.check}: {r.message}" for r in failed))
    return results
