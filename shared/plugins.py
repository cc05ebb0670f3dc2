"""Plugins: packages installed beside bosun that add losses, methods, crop policies and dataset kinds.

A package declares them as Python entry points (PyPA's entry-points specification) in four groups:

- `bosun.losses`: a loss term class; `dino.extra_losses: [{name, weight, params}]` adds
  `weight * cls(**params)(student_output, teacher_output, ncrops=, epoch=)` to the DINO loss
  (`services.pretrain.losses.extra_terms`).
- `bosun.datasets`: a dataset opener; `dataset: {kind: plugin, name, path?, params}` in any spec
  with a dataset builds each split as `open(spec, split, root=..., transform=...)`
  (`services.data.builders`), which returns a `services.data.images.ImageDataset`.
- `bosun.transforms`: a crop policy; `dino.crop_policy: {name, params}` makes DINO's crops with
  it instead of the multi-crop (`services.pretrain.data.augmentation.crop_policy`).
- `bosun.methods`: a pretraining method's builder; `method: plugin` with `plugin: {name, params,
  epochs, ...}` trains the method it builds (`services.pretrain.methods.plugin_method`).

Discovery reads the installed distributions' metadata only (`importlib.metadata.entry_points`):
nothing is imported, so the worker's main process advertises the names (its `workers.plugins`
row, which the API checks submissions against) without torch, and a job process imports the one
plugin its spec names when it needs it (`load_plugin`). Like the job-type and method registries,
one name declared twice in a group raises, since import order would otherwise pick the winner;
an entry point whose module cannot be found is reported in `Plugins.broken` and not advertised,
and one that fails to import raises `BrokenPlugin`, which fails that job with the reason.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

log = logging.getLogger(__name__)

GROUPS = ("losses", "methods", "transforms", "datasets")
PLUGIN_NAME = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
"""The names a spec may give a plugin (entry-point names are free-form; these are the ones bosun accepts)."""


class PluginError(ValueError):
    """A plugin that cannot be used."""


class DuplicatePlugin(PluginError):
    """One plugin name declared twice in a group."""


class UnknownPlugin(PluginError):
    """A plugin name no installed package declares."""


class BrokenPlugin(PluginError):
    """A declared plugin whose module is missing or fails to import."""


def group_name(group: str) -> str:
    """The entry-point group of `group` ('losses' -> 'bosun.losses')."""
    if group not in GROUPS:
        raise ValueError(f"unknown plugin group {group!r}; known: {', '.join(GROUPS)}")
    return f"bosun.{group}"


def _origin(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{ep.value} (from {dist.name if dist is not None else 'an unnamed distribution'})"


def _module_missing(ep: EntryPoint) -> str | None:
    """Why the entry point's module cannot be found, without importing it (only its top-level name is looked up)."""
    match = EntryPoint.pattern.match(ep.value)
    if match is None or not match.group("module"):
        return f"{ep.value!r} is not 'module:attribute'"
    top = match.group("module").split(".")[0]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError) as exc:
        return f"module {top!r}: {exc}"
    return None if found is not None else f"module {top!r} is not installed"


@dataclass(frozen=True)
class Plugins:
    """The plugins found in this environment: `entries[group][name]`, and the ones reported broken."""

    entries: dict[str, dict[str, EntryPoint]] = field(default_factory=dict)
    broken: tuple[str, ...] = ()

    def names(self) -> dict[str, list[str]]:
        """Plugin names per group, sorted: what a worker advertises in its `workers.plugins` row."""
        return {group: sorted(self.entries.get(group, {})) for group in GROUPS}

    def load(self, group: str, name: str) -> Any:
        """Import the object plugin `name` of `group` declares."""
        group_name(group)
        try:
            ep = self.entries.get(group, {})[name]
        except KeyError:
            known = ", ".join(sorted(self.entries.get(group, {}))) or "none"
            raise UnknownPlugin(f"no {group_name(group)} plugin {name!r} is installed here; known: {known}") from None
        try:
            return ep.load()
        except Exception as exc:  # noqa: BLE001 - any import-time error of foreign code is the plugin's fault
            raise BrokenPlugin(f"{group_name(group)} plugin {name!r} = {_origin(ep)} failed to load: "
                               f"{type(exc).__name__}: {exc}") from exc


def discover() -> Plugins:
    """Every plugin the installed distributions declare.

    Raises `DuplicatePlugin` when two declarations of one group share a name (an entry point seen
    twice with the same value, a distribution found twice on the path, is one declaration).
    """
    entries: dict[str, dict[str, EntryPoint]] = {}
    broken: list[str] = []
    for group in GROUPS:
        found: dict[str, EntryPoint] = {}
        for ep in entry_points(group=group_name(group)):
            known = found.get(ep.name)
            if known is not None:
                if known.value == ep.value:
                    continue
                raise DuplicatePlugin(f"{group_name(group)} plugin {ep.name!r} is declared twice: "
                                      f"{_origin(known)} and {_origin(ep)}")
            reason = _module_missing(ep)
            if reason is not None:
                broken.append(f"{group_name(group)} plugin {ep.name!r} = {_origin(ep)}: {reason}")
                continue
            found[ep.name] = ep
        entries[group] = found
    for message in broken:
        log.warning("plugin not advertised: %s", message)
    return Plugins(entries, tuple(broken))


def load_plugin(group: str, name: str) -> Any:
    """Import plugin `name` of `group` in this process (a job's): UnknownPlugin or BrokenPlugin otherwise."""
    return discover().load(group, name)
