"""What a newcomer reads first: the licence the package declares, and a README that cites
only what is in the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_license_file_is_the_apache_2_0_text_the_package_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "Apache-2.0"
    assert text.lstrip().startswith("Apache License")
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_readme_cites_no_file_outside_the_repository_and_no_spec_section() -> None:
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"\.\./|shared/design|SPEC\s*§", readme)
    assert re.search(r"suite takes about \w+ minutes", readme)
