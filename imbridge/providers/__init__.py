"""The provider registry: name -> "module:Class", imported only when first used.

Third-party providers register through the ``imbridge.providers`` entry-point group, e.g. in their
``pyproject.toml``::

    [project.entry-points."imbridge.providers"]
    myim = "myim_imbridge:MyIMProvider"
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from imbridge.errors import ConfigurationError

if TYPE_CHECKING:
    from imbridge.providers.base import Provider

ENTRY_POINT_GROUP = "imbridge.providers"

BUILTIN_PROVIDERS: dict[str, str] = {
    "local": "imbridge.providers.local.provider:LocalProvider",
    "tencent": "imbridge.providers.tencent.provider:TencentProvider",
    "wukong": "imbridge.providers.wukong.provider:WukongProvider",
}

ALIASES: dict[str, str] = {
    "wukongim": "wukong",
    "tencentim": "tencent",
    "tim": "tencent",
    "sqlite": "local",
}


def _entry_point_targets() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_providers() -> list[str]:
    """Canonical names of every provider that can be loaded (built-in and entry points)."""
    return sorted({*BUILTIN_PROVIDERS, *_entry_point_targets()})


def canonical_name(name: str) -> str:
    """The registered name for ``name`` (aliases resolved), or ConfigurationError with a suggestion."""
    key = name.strip().lower().replace("-", "").replace("_", "")
    key = ALIASES.get(key, key)
    known = {*BUILTIN_PROVIDERS, *_entry_point_targets()}
    if key in known:
        return key
    candidates = sorted(known | set(ALIASES))
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    hint = f" Did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise ConfigurationError(f"unknown provider {name!r}.{hint} Known providers: {', '.join(sorted(known))}.")


def load_provider_class(name: str) -> type[Provider]:
    """Import and return the provider class registered under ``name`` (or an alias of it)."""
    canonical = canonical_name(name)
    target = BUILTIN_PROVIDERS.get(canonical) or _entry_point_targets()[canonical]
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        provider_class: type[Provider] = getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"provider {canonical!r} cannot be loaded from {target!r}: {exc}") from exc
    return provider_class
