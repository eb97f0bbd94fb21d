"""Codec registry: codecs register by ID and name, built-in ones through the same entry-point group
(`gcx.codecs`) as third-party packages, loaded on first use so `gcx info` never imports torch."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points

from gcx.codecs.base import Codec
from gcx.container import format as fmt
from gcx.errors import CodecNotFoundError

ENTRY_POINT_GROUP = "gcx.codecs"


@dataclass(frozen=True)
class CodecInfo:
    id: int
    name: str
    version: int
    media: str
    lossy: bool
    summary: str
    options: dict[str, str]
    chunk_names: dict[str, str]


class CodecRegistry:
    """Codec classes by ID and by name. Conflicting registrations are refused, never silently replaced."""

    def __init__(self, group: str | None = ENTRY_POINT_GROUP):
        self._by_id: dict[int, type[Codec]] = {}
        self._by_name: dict[str, type[Codec]] = {}
        self._group = group
        self._loaded = group is None

    def register(self, cls: type[Codec]) -> type[Codec]:
        """Add a codec class (usable as a decorator). Re-registering the same class is a no-op."""
        for key, table, what in ((cls.id, self._by_id, "id"), (cls.name, self._by_name, "name")):
            other = table.get(key)
            if other is not None and other is not cls:
                raise CodecNotFoundError(
                    f"codec {cls.name!r} claims {what} {key!r}, already taken by {other.__module__}.{other.__name__}"
                )
        if not 0 < cls.id <= 0xFFFF:
            raise CodecNotFoundError(f"codec {cls.name!r}: id {cls.id} outside 1..65535")
        assigned = fmt.ASSIGNED_CODEC_IDS.get(cls.id)
        if assigned is not None and assigned != cls.name:
            raise CodecNotFoundError(
                f"codec {cls.name!r}: id {cls.id} is assigned to {assigned!r} in formats/codecs.md"
            )
        self._by_id[cls.id] = cls
        self._by_name[cls.name] = cls
        return cls

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self._group):
            try:
                self.register(ep.load())
            except Exception as exc:  # a broken plugin must not break the built-in codecs
                warnings.warn(f"gcx: codec plugin {ep.name!r} ({ep.value}) not loaded: {exc}", stacklevel=2)

    def _installed(self) -> str:
        return ", ".join(f"{c.name} ({c.id})" for c in sorted(self._by_id.values(), key=lambda c: c.id)) or "none"

    def by_id(self, codec_id: int, options: dict[str, str] | None = None) -> Codec:
        self._load()
        cls = self._by_id.get(codec_id)
        if cls is None:
            name = fmt.ASSIGNED_CODEC_IDS.get(codec_id)
            needed = f"codec {name!r} (id {codec_id})" if name else f"codec id {codec_id}, unknown to this gcx"
            raise CodecNotFoundError(f"this file needs {needed}; installed: {self._installed()}")
        return cls(**(options or {}))

    def by_name(self, name: str, options: dict[str, str] | None = None) -> Codec:
        self._load()
        cls = self._by_name.get(name)
        if cls is None:
            raise CodecNotFoundError(f"no codec named {name!r}; installed: {self._installed()}")
        return cls(**(options or {}))

    def infos(self) -> list[CodecInfo]:
        self._load()
        return [
            CodecInfo(
                c.id, c.name, c.version, c.media.name.lower(), c.lossy, c.summary, dict(c.options), dict(c.chunk_names)
            )
            for c in sorted(self._by_id.values(), key=lambda c: c.id)
        ]


default_registry = CodecRegistry()


def register_codec(cls: type[Codec]) -> type[Codec]:
    """Decorator: add a codec class to the default registry."""
    return default_registry.register(cls)


def available_codecs() -> list[CodecInfo]:
    return default_registry.infos()
