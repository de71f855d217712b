"""Run every benchmark, print one table and write it to ``benchmarks/results/latest.md``.

Usage: ``make bench`` (or ``.venv/bin/python benchmarks/run.py [--only 1,3]``).

Each benchmark runs as its own subprocess (``python -m benchmarks.bench_*``, temp
``AIRFLOW_HOME``) and prints its rows as one ``BENCH-RESULT`` JSON line. A missed target is
reported in the table, not as a failure; a benchmark that crashes makes the exit code 1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import PYTHON, Row, airflow_env  # noqa: E402

BENCHMARKS = [
    (
        "1",
        "benchmarks.bench_throughput",
        "many-users sync throughput (operator, 50 ms latency, 100 QPS limit)",
    ),
    ("2", "benchmarks.bench_client_cost", "client CPU per 1,000 pages (hook vs requests loop vs SDK)"),
    ("3", "benchmarks.bench_memory", "memory: 200,000 rows, JSON Lines file vs XCom"),
    ("4", "benchmarks.bench_import", "import cost and DAG parse time"),
    ("5", "benchmarks.bench_emulator", "emulator capacity"),
    ("6", "benchmarks.bench_scale", "engine scale: one task over 200,000 keys vs 20,000"),
    (
        "7",
        "benchmarks.bench_messages",
        "messages: 200 conversations x 3 pages at 100 QPS; 100,000-message memory",
    ),
    (
        "8",
        "benchmarks.bench_incremental",
        "incremental messages: nothing new and 1% changed vs a full export, 10,000 conversations",
    ),
    ("9", "benchmarks.bench_users", "users: ~20,000 profiles, 50 ids a request, against 5,000 users/s"),
]
COLUMNS = ("benchmark", "measure", "value", "baseline", "ratio", "target", "met?")
RESULTS = REPO / "benchmarks" / "results" / "latest.md"
README = REPO / "README.md"
README_START = "<!-- BENCH-TABLE -->"
README_END = "<!-- /BENCH-TABLE -->"


def update_readme(section: str, readme: Path = README) -> bool:
    """Replace the block between the README's BENCH-TABLE markers with ``section``."""
    text = readme.read_text(encoding="utf-8")
    start = text.find(README_START)
    if start < 0:
        return False
    end = text.find(README_END, start)
    end = end + len(README_END) if end >= 0 else start + len(README_START)
    readme.write_text(
        text[:start] + f"{README_START}\n{section}\n{README_END}" + text[end:], encoding="utf-8"
    )
    return True


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        nproc = str(os.cpu_count())
    try:
        airflow = metadata.version("apache-airflow")
    except metadata.PackageNotFoundError:
        airflow = "not installed"
    try:
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        mem = f", {mem_kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        mem = ""
    return (
        f"nproc {nproc}, CPU {cpu}{mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Airflow {airflow}"
    )


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "airflow_provider_rtcim"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + (" (provider has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_one(module: str) -> tuple[list[Row], list[str], float, str | None]:
    env = {**os.environ, **airflow_env()}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    started = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-m", module], cwd=REPO, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    elapsed = time.perf_counter() - started
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            payload = json.loads(line[len("BENCH-RESULT ") :])
            return [Row(**r) for r in payload["rows"]], payload["notes"], elapsed, None
    tail = (proc.stderr or proc.stdout)[-2500:]
    return [], [], elapsed, f"{module} exited with {proc.returncode}:\n{tail}"


def cells(row: Row) -> list[str]:
    return [row.benchmark, row.measure, row.value, row.baseline, row.ratio, row.target, row.met]


def text_table(rows: list[Row]) -> str:
    data = [list(COLUMNS), *[cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in data) for i in range(len(COLUMNS))]
    out = []
    for n, line in enumerate(data):
        out.append("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def md_table(rows: list[Row]) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(esc(c) for c in cells(r)) + " |" for r in rows]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark numbers, e.g. 1,3")
    parser.add_argument("--output", default=str(RESULTS), help="where to write the Markdown table")
    args = parser.parse_args()
    selected = {s.strip() for s in args.only.split(",")} if args.only else None

    machine = machine_line()
    load_before = os.getloadavg()
    started = time.perf_counter()
    when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"Machine: {machine}", flush=True)
    rows: list[Row] = []
    notes: list[str] = []
    failures: list[str] = []
    timings: list[str] = []
    for number, module, title in BENCHMARKS:
        if selected and number not in selected:
            continue
        print(f"[{number}] {title} ...", flush=True)
        bench_rows, bench_notes, elapsed, error = run_one(module)
        timings.append(f"{number}: {elapsed:.0f} s")
        if error:
            failures.append(error)
            rows.append(Row(f"{number} (crashed)", title, "FAILED", met="NO"))
            print(error, file=sys.stderr, flush=True)
        rows += bench_rows
        notes += bench_notes
        print(f"[{number}] done in {elapsed:.0f} s", flush=True)
    total = time.perf_counter() - started
    load_after = os.getloadavg()

    load = (
        f"load average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f} before, "
        f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} after"
    )
    caveat = (
        "Numbers are from one run on a shared machine (other processes, e.g. test suites, may run at the "
        f"same time: {load}), so they are noisy; every figure is compared with a baseline measured in the "
        "same run. Targets are what the benchmark reports against, not test assertions."
    )
    print()
    print(text_table(rows))
    print()
    for note in notes:
        print(f"- {note}")
    print(f"- {caveat}")
    print(f"- Durations: {', '.join(timings)}; total {total:.0f} s.")
    print(f"Machine: {machine}")

    lines = [
        "# Benchmark results (latest run)",
        "",
        f"Run {when} with `make bench` at commit {git_commit()} in {total:.0f} s.",
        "",
        f"Machine: {machine}.",
        "",
        md_table(rows),
        "",
        "Notes:",
        "",
        *[f"- {n}" for n in notes],
        f"- {caveat}",
        f"- Durations: {', '.join(timings)}.",
        "",
        "See `benchmarks/README.md` for what each benchmark does and for the analysis of missed targets.",
        "",
    ]
    output = Path(args.output)
    if not selected:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("\n".join(lines), encoding="utf-8")
        print(f"Wrote {output}")
        section = "\n".join(
            [
                f"Latest run: {when}, commit {git_commit()}, {total:.0f} s. Machine: {machine}.",
                "",
                md_table(rows),
                "",
                f"Notes on each figure and the load during the run: `{output.relative_to(REPO)}`.",
            ]
        )
        if update_readme(section):
            print(f"Updated the benchmark table in {README.name}")
    else:
        print(f"(--only: {output} not written)")
    for failure in failures:
        print(f"FAILED: {failure.splitlines()[0]}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
