"""Render the Helm chart with each values file into deploy/k8s/manifests/<env>/ (``make manifests``), or
check that the checked-in render is current (``--check``). Uses Helm's Go SDK through PyPI's
helm-python-sdk, so no helm binary is needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm

HERE = Path(__file__).resolve().parent
CHART = HERE / "helm" / "pickwise"
MANIFESTS = HERE / "manifests"
ENVIRONMENTS = ("local", "gke")
RELEASE = "pickwise"
NAMESPACE = "pickwise"


def values_for(env: str) -> dict:
    return helm.values_from_yaml((CHART / f"values-{env}.yaml").read_text(encoding="utf-8"))


def render(env: str) -> dict[str, str]:
    """File name -> manifest text, for every template that renders to something (NOTES.txt excluded)."""
    with helm.Chart.load(CHART) as chart:
        rendered = chart.render(values=values_for(env), name=RELEASE, namespace=NAMESPACE, is_install=True)
    files = {}
    for template, text in sorted(rendered.items()):
        name = Path(template).name
        if name == "NOTES.txt" or not text.strip():
            continue
        header = (f"# Rendered by `make manifests` from deploy/k8s/helm/pickwise with values-{env}.yaml "
                  f"(release {RELEASE}, namespace {NAMESPACE}). Do not edit: change the chart and re-render.\n")
        files[name] = header + text.strip() + "\n"
    return files


def stale(env: str, folder: Path | None = None) -> list[str]:
    """Names of checked-in files that differ from a fresh render, are missing, or are left over."""
    wanted = render(env)
    folder = folder or MANIFESTS / env
    present = {p.name for p in folder.glob("*.yaml")} if folder.exists() else set()
    differ = [n for n, text in wanted.items() if not (folder / n).exists() or (folder / n).read_text() != text]
    return sorted(set(differ) | (present - set(wanted)))


def write(env: str) -> None:
    folder = MANIFESTS / env
    folder.mkdir(parents=True, exist_ok=True)
    wanted = render(env)
    for old in folder.glob("*.yaml"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (folder / name).write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in render is stale")
    args = parser.parse_args(argv)
    if args.check:
        problems = {env: stale(env) for env in ENVIRONMENTS}
        for env, names in problems.items():
            for name in names:
                print(f"stale: deploy/k8s/manifests/{env}/{name} (run `make manifests`)", file=sys.stderr)
        return 1 if any(problems.values()) else 0
    for env in ENVIRONMENTS:
        write(env)
        print(f"rendered deploy/k8s/manifests/{env}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
