"""One dependency style in every service: routes get what they need through ``Annotated`` aliases declared in
the service's ``deps.py``; no route takes the raw ``Request`` to reach ``app.state``, and nothing outside
``deps.py`` and the app wiring reads ``request.app.state``."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SERVICES = sorted(p for p in (ROOT / "services").iterdir() if p.is_dir())
ROUTE_DECORATORS = {"get", "post", "put", "delete", "patch", "api_route"}


def package(service: Path) -> Path:
    return service / "src" / ("pickwise_" + service.name.replace("-", "_"))


def route_functions(tree: ast.AST) -> list[ast.AsyncFunctionDef | ast.FunctionDef]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                call = deco.func if isinstance(deco, ast.Call) else deco
                if isinstance(call, ast.Attribute) and call.attr in ROUTE_DECORATORS:
                    found.append(node)
    return found


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_every_service_with_routes_declares_their_dependencies_in_deps(service: Path) -> None:
    has_routes = any(route_functions(ast.parse(p.read_text())) for p in package(service).rglob("*.py"))
    assert not has_routes or (package(service) / "deps.py").exists()


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_no_route_takes_the_raw_request(service: Path) -> None:
    offenders = []
    for path in package(service).rglob("*.py"):
        for fn in route_functions(ast.parse(path.read_text())):
            for arg in fn.args.args + fn.args.kwonlyargs:
                if isinstance(arg.annotation, ast.Name) and arg.annotation.id == "Request":
                    offenders.append(f"{path.name}:{fn.name}")
    assert offenders == []


@pytest.mark.parametrize("service", SERVICES, ids=[s.name for s in SERVICES])
def test_only_deps_and_wiring_read_app_state_through_the_request(service: Path) -> None:
    allowed = {"deps.py", "app.py"}
    offenders = [p.name for p in package(service).rglob("*.py")
                 if p.name not in allowed and "request.app.state" in p.read_text()]
    assert offenders == []
