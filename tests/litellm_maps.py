"""Fetch LiteLLM's real price maps for the tests: `python -m tests.litellm_maps FOLDER VERSION...`.

Each map is `litellm/model_prices_and_context_window_backup.json` in the litellm wheel of that
version on PyPI (the registry `pip` uses here): the wheel is downloaded, without its
dependencies, and only the map is kept, as FOLDER/litellm-VERSION.json. `make install-test`
runs it once; tests/test_litellm_real_maps.py and bench/imports.py read the maps.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MAP = "litellm/model_prices_and_context_window_backup.json"


def fetch(folder: Path, version: str) -> Path:
    target = folder / f"litellm-{version}.json"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as download:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "--only-binary=:all:",
                        f"litellm=={version}", "--dest", download], check=True)
        (wheel,) = Path(download).glob("litellm-*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(MAP)
    folder.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.rename(target)  # whole or absent
    return target


def main() -> None:
    folder, *versions = sys.argv[1:]
    for version in versions:
        print(f"LiteLLM {version}'s price map: {fetch(Path(folder), version)}")


if __name__ == "__main__":
    main()
