"""The README's function reference names every public function, and nothing that is not one."""

from __future__ import annotations

import re

import functions  # noqa: F401 - declares the functions
from functions.runtime import REGISTRY
from tests.conftest import ROOT


def test_readme_lists_every_public_function():
    readme = (ROOT / "README.md").read_text()
    reference = readme.split("## Function reference", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z]+:[A-Za-z]+)`", reference, re.M))
    documented |= set(re.findall(r"/ `([a-z]+:[A-Za-z]+)`", reference))
    public = {name for name, fn in REGISTRY.items() if not fn.internal}
    assert documented == public
