"""Benchmark 4: import cost of the provider on top of ``airflow.sdk``, and DAG parse time.

Each repetition is a fresh interpreter (temp ``AIRFLOW_HOME``) that times ``import
airflow.sdk`` (the baseline every DAG file pays) and then the provider's hook, operator
and sensor modules, and reports whether ``requests`` got imported. Medians of the
repetitions are reported.

Parse time: a fresh interpreter builds a ``DagBag`` over ``dags_examples/`` and reports
each file's parse duration (``dagbag_stats``). The files are parsed in one process, so the
first file parsed also pays the provider's import; medians over the repetitions.
"""

from __future__ import annotations

import json
import os
import tempfile

from benchmarks.common import PYTHON, REPO, Row, airflow_env, emit, fmt, median, run_for_json, yes_no

REPS = 5
PARSE_REPS = 3
TARGET_MS = 100.0
BENCH = "4 import / parse"

IMPORT_CODE = """
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
import airflow_provider_rtcim.hooks.rtcim
import airflow_provider_rtcim.operators.rtcim
import airflow_provider_rtcim.sensors.rtcim
t2 = time.perf_counter()
print("IMPORT " + json.dumps({"sdk": t1 - t0, "provider": t2 - t1, "requests": "requests" in sys.modules}))
"""

PARSE_CODE = """
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
t1 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
t2 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], collect_dags=True)
t3 = time.perf_counter()
stats = {s.file: {"duration": s.duration.total_seconds(), "dags": s.dag_num, "tasks": s.task_num}
         for s in bag.dagbag_stats}
print("PARSE " + json.dumps({"sdk": t1 - t0, "bag": t3 - t2, "files": stats,
                             "errors": {k: str(v)[:300] for k, v in bag.import_errors.items()},
                             "requests": "requests" in sys.modules}))
"""


def run_code(code: str, prefix: str, *args: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="rtcim-bench-home-") as home:
        env = {**os.environ, **airflow_env(home)}
        return run_for_json([PYTHON, "-c", code, *args], prefix, env=env, timeout=300, what="subprocess")


def main() -> None:
    imports = [run_code(IMPORT_CODE, "IMPORT") for _ in range(REPS)]
    sdk_ms = median([r["sdk"] for r in imports]) * 1000
    provider_ms = median([r["provider"] for r in imports]) * 1000
    requests_loaded = any(r["requests"] for r in imports)
    parses = [run_code(PARSE_CODE, "PARSE", str(REPO / "dags_examples")) for _ in range(PARSE_REPS)]

    rows = [
        Row(
            BENCH,
            "import hook + operator + sensor on top of airflow.sdk (ms)",
            fmt(provider_ms, 1),
            f"{fmt(sdk_ms, 0)} (import airflow.sdk)",
            f"{provider_ms / sdk_ms:.3f}x",
            f"< {TARGET_MS:.0f} ms",
            yes_no(provider_ms < TARGET_MS),
        ),
        Row(
            BENCH,
            "requests imported by those modules",
            "yes" if requests_loaded else "no",
            "-",
            "-",
            "no",
            yes_no(not requests_loaded),
        ),
    ]
    files = sorted(parses[0]["files"])
    parse_sdk_ms = median([p["sdk"] for p in parses]) * 1000
    for name in files:
        ms = median([p["files"][name]["duration"] for p in parses]) * 1000
        info = parses[0]["files"][name]
        rows.append(
            Row(
                BENCH,
                f"parse {os.path.basename(name)} (DAGs {info['dags']}, tasks {info['tasks']}) (ms)",
                fmt(ms, 1),
                f"{fmt(parse_sdk_ms, 0)} (import airflow.sdk)",
                f"{ms / parse_sdk_ms:.3f}x",
                "-",
                "-",
            )
        )
    errors = sum(len(p["errors"]) for p in parses)
    rows.append(
        Row(
            BENCH,
            "DagBag over dags_examples/: total (ms) | import errors",
            f"{fmt(median([p['bag'] for p in parses]) * 1000, 0)} | {errors}",
            f"{fmt(parse_sdk_ms, 0)} (import airflow.sdk)",
            "-",
            "0 errors",
            yes_no(errors == 0),
        )
    )
    parse_requests = any(p["requests"] for p in parses)
    notes = [
        f"4: imports: median of {REPS} fresh interpreters (temp AIRFLOW_HOME, examples off); parse: median of "
        f"{PARSE_REPS} fresh interpreters, one DagBag over dags_examples/ each; per-file times are DagBag's "
        "dagbag_stats (the first file parsed also pays the provider's imports); DagBag total includes its own "
        f"set-up. requests imported while parsing: {'yes' if parse_requests else 'no'}."
    ]
    if errors:
        notes.append("4: import errors: " + json.dumps(parses[0]["errors"])[:500])
    emit(rows, notes)


if __name__ == "__main__":
    main()
