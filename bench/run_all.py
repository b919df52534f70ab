"""Run every benchmark under bench/ and write docs/benchmarks.md (machine, command, figures).

Each ``bench/bench_*.py`` script prints a markdown section on stdout. Usage::

    .venv/bin/python bench/run_all.py            # all benchmarks (what `make bench` runs)
    .venv/bin/python bench/run_all.py crypto     # only bench_crypto.py; other sections are kept
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"
MARK = "<!-- bench:{} -->"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    return (
        f"- machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"Linux {platform.release()}\n- Python {platform.python_version()}, "
        f"run on {_dt.date.today().isoformat()}"
    )


def _notes(text: str) -> str:
    m = re.search(r"<!-- notes -->\n(.*?)<!-- /notes -->", text, re.S)
    return m.group(1) if m else ""


def _sections(text: str) -> dict[str, str]:
    found = {}
    for m in re.finditer(r"<!-- bench:(\w+) -->\n(.*?)<!-- /bench -->", text, re.S):
        found[m.group(1)] = m.group(2)
    return found


def main(argv: list[str]) -> int:
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    wanted = set(argv)
    text = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
    old = _sections(text)
    notes = _notes(text)
    sections = dict(old)
    rc = 0
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        cmd = [sys.executable, str(script.relative_to(ROOT))]
        print(f"running {' '.join(cmd[1:])} …", flush=True)
        res = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stdout, res.stderr, sep="\n", file=sys.stderr)
            rc = 1
            continue
        sections[name] = (
            f"Command: `.venv/bin/python bench/{script.name}` (or `make bench`)\n\n{machine()}\n\n"
            f"{res.stdout.strip()}\n"
        )
    body = ["# Benchmarks", "",
            "Measured, never asserted in unit tests. Regenerate with `make bench` "
            "(or `.venv/bin/python bench/run_all.py NAME` for one section). The notes block is "
            "written by hand and kept across runs.", ""]
    if notes:
        body += ["<!-- notes -->", notes.rstrip("\n") + "\n", "<!-- /notes -->", ""]
    for name in sorted(sections):
        body += [MARK.format(name), sections[name].rstrip("\n") + "\n", "<!-- /bench -->", ""]
    OUT.write_text("\n".join(body), encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
