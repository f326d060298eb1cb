"""bench/results.md, section by section: a bench run alone rewrites its own section."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.md"


def write_section(lines: list[str]) -> None:
    """Put the section `lines` (its first line is its `## ` heading) in results.md: in place
    of the section with the same heading, or at the end."""
    heading, section = lines[0], "\n".join(lines).rstrip("\n") + "\n"
    report = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if f"\n{heading}\n" in report:
        head, _, rest = report.partition(f"\n{heading}\n")
        _, found, tail = rest.partition("\n## ")
        report = head + "\n" + section + ("\n## " + tail if found else "")
    else:
        report = report.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(report)
