"""environment.yml, pyproject.toml and constraints.txt must not drift apart."""

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
# conda-forge spells some packages differently from PyPI.
CONDA_TO_PYPI = {"pytorch": "torch"}


def pypi_name(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


def conda_packages() -> set[str]:
    names = set()
    text = (ROOT / "environment.yml").read_text()
    dependencies = text.split("dependencies:", 1)[1]
    for line in dependencies.splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)", line)  # top-level conda packages, not pip's list
        if m and m.group(1) not in {"python", "pip"}:
            names.add(CONDA_TO_PYPI.get(m.group(1), m.group(1)).lower())
    return names


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_runtime_deps_plus_lab_extras():
    project = pyproject()["project"]
    wanted = {pypi_name(r) for r in project["dependencies"] + project["optional-dependencies"]["lab"]}
    wanted -= {"ipykernel"}  # conda's jupyterlab brings it
    assert conda_packages() == wanted


def test_environment_yml_installs_this_package():
    assert re.search(r"^\s+- -e \.$", (ROOT / "environment.yml").read_text(), re.M)


def test_constraints_pin_every_dependency_exactly():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[pypi_name(name)] = version
    project = pyproject()["project"]
    for requirement in project["dependencies"] + sum(project["optional-dependencies"].values(), []):
        marker = Requirement(requirement).marker
        if marker is not None and not marker.evaluate():
            continue  # e.g. tomli, only for Python 3.10
        assert pypi_name(requirement) in pins, f"{requirement} has no exact pin in constraints.txt"
    assert pins["torch"] == "2.13.0"  # the CPU build CI installs


def test_conda_torch_matches_the_pin():
    assert "pytorch=2.13.0" in (ROOT / "environment.yml").read_text()
