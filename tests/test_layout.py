"""The dependency rule of the README ("How the code is laid out"), checked on every run.

The contracts live in pyproject.toml under [tool.importlinter]; this test fails with
import-linter's own report, which names the offending import and its line.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_import_follows_the_layers() -> None:
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(linter), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


def _layered_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    named: set[str] = set()
    for contract in config["tool"]["importlinter"]["contracts"]:
        for layer in contract.get("layers", []):
            named.update(part.strip() for part in layer.split("|"))
    return named


def test_every_domain_has_a_place_in_the_layers() -> None:
    """A new domain folder must be placed in a layer, or nothing would check its imports."""
    named = _layered_modules()
    for service in ("attribution", "catalog"):
        base = ROOT / "services" / service
        domains = {
            f"services.{service}.{path.stem}"
            for path in base.iterdir()
            if path.name not in {"migrations", "__init__.py", "__pycache__", "Dockerfile"}
            and (path.is_dir() or path.suffix == ".py")
        }
        assert domains - named == set(), (
            f"add these to [tool.importlinter] layers: {domains - named}"
        )
