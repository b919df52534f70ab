"""Run every benchmark under bench/ and write docs/benchmarks.md (machine, command, figures).

Each ``bench/bench_*.py`` script prints a markdown section on stdout. A script that defines a module-level
``FULL_ARGS`` tuple of strings (read from its source, not imported) is run with those arguments: they give
the figures the issues ask for (e.g. the 100,000-ballot record of ``bench_verifier.py``). ``--quick`` runs
every script with its ``QUICK_ARGS`` if it has them (``bench_million.py``: its default is a million
ballots), else with no arguments. ``--tiny`` runs every script with its ``TINY_ARGS`` (every script
must have them: a smoke run through every path in seconds, which ``make test`` runs so that no benchmark
can rot) and writes to ``--out FILE`` (default: nowhere), never to ``docs/benchmarks.md``. Usage::

    .venv/bin/python bench/run_all.py              # all benchmarks, full size (what `make bench` runs)
    .venv/bin/python bench/run_all.py verifier     # only bench_verifier.py; other sections are kept
    .venv/bin/python bench/run_all.py --quick crypto
    .venv/bin/python bench/run_all.py --tiny --out /tmp/bench-smoke.md

A script's progress messages (stderr) pass through; its stdout becomes the section.
"""

from __future__ import annotations

import ast
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


def full_args(script: Path, name: str = "FULL_ARGS") -> list[str] | None:
    """The script's ``FULL_ARGS = (...)`` (or ``name``: a literal tuple or list of strings), or ``None``."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            args = ast.literal_eval(value)
            if not isinstance(args, tuple | list) or not all(isinstance(v, str) for v in args):
                raise SystemExit(f"{script.name}: {name} must be a tuple of strings")
            return list(args)
    return None


def _write(out: Path, notes: str, sections: dict[str, str]) -> None:
    body = [
        "# Benchmarks",
        "",
        "Measured, never asserted in unit tests. Regenerate with `make bench` "
        "(or `.venv/bin/python bench/run_all.py NAME` for one section). The notes block is "
        "written by hand and kept across runs.",
        "",
    ]
    if notes:
        body += ["<!-- notes -->", notes.rstrip("\n") + "\n", "<!-- /notes -->", ""]
    for name in sorted(sections):
        body += [MARK.format(name), sections[name].rstrip("\n") + "\n", "<!-- /bench -->", ""]
    out.write_text("\n".join(body), encoding="utf-8")


def section(shown: str, stdout: str) -> str:
    """A section's text: the command, the machine, then what the script printed."""
    return f"Command: `.venv/bin/python {shown}` (or `make bench`)\n\n{machine()}\n\n{stdout.strip()}\n"


def write_section(name: str, shown: str, stdout: str, out: Path = OUT) -> None:
    """Replace (or add) one section of ``out``, keeping the others and the notes block: for a script run
    by hand with other arguments than its ``FULL_ARGS`` (``bench_million.py --write-docs``)."""
    text = out.read_text(encoding="utf-8") if out.exists() else ""
    sections = _sections(text)
    full = "(the full run: `make bench-million`)"
    sections[name] = section(shown, stdout).replace("(or `make bench`)", full)
    _write(out, _notes(text), sections)


def main(argv: list[str]) -> int:
    scripts = sorted((ROOT / "bench").glob("bench_*.py"))
    quick = "--quick" in argv
    tiny = "--tiny" in argv
    out: Path | None = OUT
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    elif tiny:
        out = None
    wanted = set(argv) - {"--quick", "--tiny"}
    text = OUT.read_text(encoding="utf-8") if OUT.exists() and not tiny else ""
    old = _sections(text)
    notes = _notes(text)
    sections = dict(old)
    rc = 0
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        if tiny:
            tiny_args = full_args(script, "TINY_ARGS")
            if tiny_args is None:
                print(f"{script.name}: no TINY_ARGS (every benchmark needs a smoke run)", file=sys.stderr)
                rc = 1
                continue
            args = tiny_args
        else:
            args = (full_args(script, "QUICK_ARGS") or []) if quick else (full_args(script) or [])
        cmd = [sys.executable, str(script.relative_to(ROOT)), *args]
        shown = " ".join(["bench/" + script.name, *args])
        print(f"running {shown} …", flush=True)
        res = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)  # stderr: progress, shown
        if res.returncode != 0:
            print(res.stdout, file=sys.stderr)
            rc = 1
            continue
        sections[name] = section(shown, res.stdout)
    if out is None:
        for name in sorted(sections):
            print(sections[name])
        return rc
    _write(out, notes, sections)
    print(f"wrote {out}")
    return rc


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
