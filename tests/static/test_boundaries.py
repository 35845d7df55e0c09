"""Services import pickwise_common and nothing of each other; pickwise_common imports no service."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULES = {p.name: "pickwise_" + p.name.replace("-", "_") for p in (ROOT / "services").iterdir() if p.is_dir()}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def python_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*.py") if ".venv" not in p.parts]


@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_service_imports_no_other_service(service: str) -> None:
    others = set(SERVICE_MODULES.values()) - {SERVICE_MODULES[service]}
    offenders = {str(p.relative_to(ROOT)): sorted(imported_modules(p) & others)
                 for p in python_files(ROOT / "services" / service)}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_common_imports_no_service_or_pipeline() -> None:
    forbidden = set(SERVICE_MODULES.values()) | {"pickwise_pipeline"}
    offenders = {str(p.relative_to(ROOT)): sorted(imported_modules(p) & forbidden)
                 for p in python_files(ROOT / "libs" / "common" / "src")}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_service_app_modules_are_wiring_on_the_shared_factory() -> None:
    for service, module in SERVICE_MODULES.items():
        source = (ROOT / "services" / service / "src" / module / "app.py").read_text()
        assert "service_app(" in source, f"{service} does not build its app with pickwise_common.app.service_app"
        assert "/healthz" not in source and "/metrics" not in source, f"{service} re-implements health/metrics"
