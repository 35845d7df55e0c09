"""An in-memory stand-in for the serving side of ``pickwise_common.registry.Registry`` (``fetch``, ``version``),
for unit tests of pure serving logic (which model answers for an alias, what a failing registry keeps). Tests
that talk to a registry use the real MLflow of the test infrastructure instead."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pickwise_common.errors import DependencyUnavailable
from pickwise_common.registry import LocalModel, ModelVersionInfo


@dataclass
class FakeRegistry:
    """One registered model, ``name``: versions as directories already on disk, aliases pointing at versions, tags
    per version; ``down`` fails every call as an unreachable registry does. Other names have no versions.
    ``fetched`` records each (name, alias) asked for."""

    name: str
    versions: dict[str, Path] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    down: bool = False
    fetched: list[tuple[str, str]] = field(default_factory=list)

    def fetch(self, name: str, alias: str) -> LocalModel | None:
        if self.down:
            raise DependencyUnavailable("model registry get alias failed: connection refused", dependency="registry")
        self.fetched.append((name, alias))
        version = self.aliases.get(alias) if name == self.name else None
        return None if version is None else LocalModel(name, version, alias, self.versions[version])

    def version(self, name: str, version: str) -> ModelVersionInfo:
        if self.down:
            raise DependencyUnavailable("model registry get version failed: connection refused",
                                        dependency="registry")
        aliases = tuple(alias for alias, points_at in self.aliases.items() if points_at == version)
        return ModelVersionInfo(name, version, run_id=None, source=str(self.versions[version]),
                                tags=dict(self.tags.get(version, {})), aliases=aliases)
