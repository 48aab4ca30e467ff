"""Run the benchmarks: `python -m bench [--quick] [--only NAME[,NAME...]]` (`make bench`).

Writes bench/results/latest.json (a list, one object per benchmark: name, value, baseline,
ratio, target, met, unit and details; with --only, the other entries of the previous run of
the same form, quick or full, are kept) and regenerates the results table in bench/README.md between its markers.
A missed target is a result, not an error: the exit code is non-zero only when a benchmark
could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.harness import CORES, PY, REPO, Stack, log

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "latest.json"
README = BENCH_DIR / "README.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"

#: in running order; the DSP ones are scripts of their own (they pin themselves to one core)
SCRIPTS = {"clone_dsp": "clone_dsp.py", "speaker_embedding": "speaker_embedding.py", "perform_dsp": "perform_dsp.py",
           "db_aging": "db_aging.py", "send_cost": "send_cost.py"}
STACK_BENCHES = ("round_trips", "orchestration_overhead", "push_latency", "sse_fanout", "throughput", "memory", "submit")
ORDER = (*SCRIPTS, *STACK_BENCHES)


def _stack_bench(name: str):
    from bench import memory, orchestration, push, round_trips, sse_fanout, submit, throughput

    return {"round_trips": round_trips.run, "orchestration_overhead": orchestration.run, "push_latency": push.run,
            "sse_fanout": sse_fanout.run, "throughput": throughput.run, "memory": memory.run,
            "submit": submit.run}[name]


def run_script(name: str, quick: bool) -> dict:
    argv = [PY, str(BENCH_DIR / SCRIPTS[name])] + (["--quick"] if quick else [])
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=str(REPO), timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    out = json.loads(line)
    out.setdefault("unit", "x real time")
    log(f"{name}: {out['value']} {out['unit']} (baseline {out['baseline']}, ratio {out['ratio']})")
    return out


def _failed(name: str, exc: BaseException) -> dict:
    return {"name": name, "value": None, "baseline": None, "ratio": None, "target": "", "met": False,
            "unit": "", "error": f"{type(exc).__name__}: {exc}"[:2000]}


def _fmt(x) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)


def _notes(r: dict) -> str:
    name = r["name"]
    if r.get("error"):
        return "ERROR: " + r["error"].splitlines()[0][:120]
    if name == "submit":
        ol = r.get("open_loop") or {}
        return (f"closed loop p99 {r['p99_ms']} ms (bare {r['bare_p99_ms']} ms), {r['clients']} clients, "
                f"{r['uvicorn_workers']} uvicorn worker; API CPU {r.get('api_cpu_ms_per_request')} ms/request; "
                f"open loop at {ol.get('rate_rps')} req/s: p99 {(ol.get('latency_ms') or {}).get('p99')} ms")
    if name == "sse_fanout":
        return (f"{r['followers']} followers of {r['jobs']} jobs on one API process (answers "
                f"{r.get('stream_answers')}): {r['events_delivered']}/{r['events_expected']} events, p50 "
                f"{r['sse_ms'].get('p50')} ms; Redis subscribers per job {r['redis_subscribers_per_job']}")
    if name == "round_trips":
        m, b = r["measured"], r["baseline_counts"]
        return (f"MongoDB: submit {m['submit']['mongo']}, perform job {m['perform']['mongo']} (baseline "
                f"{b['submit']['mongo']} / {b['perform']['mongo']}); Redis: submit {m['submit']['redis']}, "
                f"perform job {m['perform']['redis']} (baseline {b['submit']['redis']} / {b['perform']['redis']})")
    if name == "orchestration_overhead":
        return (f"p50 {r['overhead_ms']['p50']} / p99 {r['overhead_ms']['p99']} ms overhead; "
                f"end to end p50 {r['total_ms']['p50']} ms")
    if name == "throughput":
        return (f"limit {r['baseline']} jobs/s from {r['cpu_s_per_job']['worker']} worker CPU-s/job; "
                f"{r['worker_pool']} x{r['worker_concurrency']}; whole stack {r['stack_cpu_s_per_job']} CPU-s/job; "
                f"other load left {r['cores_left_by_other_load']} cores: {r['share_of_limit_on_cores_left']:.0%} "
                f"of the limit on those")
    if name == "push_latency":
        return f"SSE p50 {r['sse_ms'].get('p50')} ms; raw Redis pub/sub p99 {r['raw_pubsub_ms'].get('p99')} ms"
    if name == "memory":
        return (f"API x{r['api_ratio']} ({r['rss_early']['api_mb']}->{r['rss_late']['api_mb']} MB), worker "
                f"x{r['worker_ratio']} ({r['rss_early']['worker_mb']}->{r['rss_late']['worker_mb']} MB), "
                f"{r['early_jobs']} vs {r['late_jobs']} jobs")
    if name == "send_cost":
        c = r["redis_commands_per_send"]
        return (f"Redis commands per enqueue {c['with_event']} with the task-sent event, "
                f"{c['without_event']} without; {r['sends']} sends each")
    if name == "db_aging":
        return (f"ops/s first 5,000 -> last 5,000 of {r['ops']:,}: ours {r['ours_ops_s']}, "
                f"replica set + retryable writes on {r['baseline_ops_s']}")
    if name == "speaker_embedding":
        return (f"speaker analysis of {r['speech_s']} s of speech, one core; resemblyzer's overlapping windows "
                f"{r['resemblyzer_rate_x']}x; clone DSP {r['clean_with_checks_x']}x with the checks, "
                f"{r['baseline']}x without (ratio = slowdown); voice match: "
                + "; ".join(f"{k} {v['score']} ({v['band']}, cos {v['cosine']})" for k, v in r["scores"].items()))
    if name in SCRIPTS:
        return f"ffmpeg {r['baseline']}x; CPU time on one core (wall: {r.get('x_real_time_wall', '-')}x)"
    return ""


def write_readme(results: list[dict], quick: bool, elapsed_s: float, load_at_start: float) -> None:
    lines = [START, "",
             f"Last run: {time.strftime('%Y-%m-%d %H:%M')} ({'quick' if quick else 'full'} form, {elapsed_s:.0f} s) on "
             f"{CORES} cores shared with other work: 1-minute load average {load_at_start:.1f} at the start, "
             f"{os.getloadavg()[0]:.1f} at the end. Written by `python -m bench`.", "",
             "| benchmark | value | unit | baseline | ratio | target | met | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['name']} | {_fmt(r['value'])} | {r.get('unit', '')} | {_fmt(r['baseline'])} | "
                     f"{_fmt(r['ratio'])} | {r['target']} | {'yes' if r['met'] else '**no**'} | {_notes(r)} |")
    lines += ["", END]
    table = "\n".join(lines)
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + table + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + table + "\n"
    README.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="New Visions benchmarks (issue 8)")
    parser.add_argument("--quick", action="store_true", help="the short form (make bench BENCH_QUICK=1)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(ORDER)}")
    args = parser.parse_args(argv)
    wanted = [n.strip() for n in args.only.split(",") if n.strip()] or list(ORDER)
    unknown = [n for n in wanted if n not in ORDER]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {', '.join(ORDER)}")
    started, load_at_start = time.time(), os.getloadavg()[0]
    log(f"load average {load_at_start:.1f} on {CORES} cores; {'quick' if args.quick else 'full'} form")
    results: dict[str, dict] = {}
    for name in (n for n in ORDER if n in wanted and n in SCRIPTS):
        try:
            results[name] = run_script(name, args.quick)
        except Exception as exc:
            log(f"{name} FAILED: {exc}")
            results[name] = _failed(name, exc)
    stack_wanted = [n for n in ORDER if n in wanted and n in STACK_BENCHES]
    if stack_wanted:
        stack = Stack("bench")
        try:
            stack.start()
            log(f"stack up: redis, SecantusDB, fake providers ({stack.tmp})")
            for name in stack_wanted:
                try:
                    results[name] = _stack_bench(name)(stack, args.quick)
                except Exception as exc:
                    traceback.print_exc()
                    log(f"{name} FAILED: {exc}")
                    results[name] = _failed(name, exc)
                    for proc_name in [p for p in stack.procs if p.startswith("worker-")]:
                        stack.stop(proc_name)
                    stack.purge_queue("perform")
        except Exception as exc:
            traceback.print_exc()
            for name in stack_wanted:
                results.setdefault(name, _failed(name, exc))
        finally:
            stack.close(keep_logs=any(results.get(n, {}).get("error") for n in stack_wanted))
    # --only merges into the previous run of the same form, so a quick re-run of one benchmark
    # never mixes into (or overwrites) the full run's figures
    form_results = RESULTS.with_name(f"latest-{'quick' if args.quick else 'full'}.json")
    previous = {}
    if args.only and form_results.exists():
        previous = {r["name"]: r for r in json.loads(form_results.read_text())}
    merged = {**previous, **results}
    ordered = [merged[n] for n in ORDER if n in merged]
    for r in ordered:
        r["quick"] = args.quick
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # latest.json is whichever form ran last; latest-<form>.json keeps each form's own
    for path in (RESULTS, form_results):
        path.write_text(json.dumps(ordered, indent=2) + "\n")
    elapsed = time.time() - started
    write_readme(ordered, args.quick, elapsed, load_at_start)
    for r in ordered:
        print(f"{r['name']:24s} {_fmt(r['value']):>8s} {r.get('unit', ''):22s} baseline {_fmt(r['baseline']):>8s} "
              f"ratio {_fmt(r['ratio']):>6s}  {'met' if r['met'] else 'MISSED'}  {r['target']}")
    log(f"done in {elapsed:.0f} s; {RESULTS.relative_to(REPO)} and {README.relative_to(REPO)} written")
    return 1 if any(r.get("error") for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
