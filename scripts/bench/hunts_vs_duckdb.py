#!/usr/bin/env python3
"""Every `crosswind hunt` side by side with DuckDB asking the same question of the same files.

    hunts_vs_duckdb.py --crosswind BIN --signins FILE --cloudtrail FILE [--rounds 3] [--work DIR]

Imports the Graph beta sign-ins and the CloudTrail records into a fresh crosswind store, loads
them into a fresh DuckDB file (hunts_duckdb.py load), then runs each hunt on both, alternating
which goes first, `--rounds` times, over the whole store. crosswind's time is its whole process;
DuckDB's is measured inside its process from opening the database to closing it (Python start-up
and `import duckdb` left out, which favours DuckDB by a few tenths of a second). Prints medians,
ratios (crosswind / DuckDB), row counts, and whether the rows agree on the columns both write.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DUCK = os.path.join(HERE, "hunts_duckdb.py")
# Hunts DuckDB is asked too; the others read crosswind's correlator state (scores, signals of
# several detectors) that has no one-query equivalent on the two tables.
COMPARED = ["risky-signins", "console-no-mfa", "cross-cloud-ips", "spray-sources", "recon-bursts"]
CROSSWIND_ONLY = ["identity-risk", "risk-detections", "post-compromise"]
# Same rule, so the rows must agree; the others are the detector's window without its refinements.
EXACT = {"risky-signins", "console-no-mfa", "cross-cloud-ips"}


def run(cmd, stdout=subprocess.PIPE):
    done = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-2000:]}")
    return done


def duck(python, *args):
    out = run([python, DUCK, *args]).stdout
    line = [l for l in out.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def rows_of(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def agree(a, b):
    """Same rows, compared on the columns both wrote (crosswind adds explanation columns)."""
    if len(a) != len(b):
        return False
    if not a:
        return True
    common = sorted(set(a[0]) & set(b[0]))
    key = lambda r: json.dumps([r.get(c) for c in common], sort_keys=True)
    return sorted(map(key, a)) == sorted(map(key, b))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--crosswind", required=True)
    p.add_argument("--signins", required=True)
    p.add_argument("--cloudtrail", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--python", default=sys.executable, help="a Python with duckdb")
    p.add_argument("--work", help="keep the stores here (default: a temporary directory)")
    a = p.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="crosswind-hunts-")
    os.makedirs(work, exist_ok=True)
    store, duckdb_file = os.path.join(work, "store.db"), os.path.join(work, "hunts.duckdb")
    config = os.path.join(work, "crosswind.toml")
    with open(config, "w") as f:
        f.write(f'[store]\npath = "{store}"\nretention_days = 3650\n')
    cw = [a.crosswind, "--config", config]

    for path in (store, store + "-wal", store + "-shm", duckdb_file):
        if os.path.exists(path):
            os.remove(path)
    started = time.perf_counter()
    run(cw + ["import", "--format", "graph", a.signins])
    run(cw + ["import", "--format", "cloudtrail", a.cloudtrail])
    cw_import = time.perf_counter() - started
    loaded = duck(a.python, "load", "--db", duckdb_file, "--signins", a.signins,
                  "--cloudtrail", a.cloudtrail)
    print(f"store: crosswind import {cw_import:.2f} s, DuckDB load {loaded['seconds']:.2f} s "
          f"({loaded['rows']} records)", flush=True)

    times = {h: {"crosswind": [], "duckdb": []} for h in COMPARED + CROSSWIND_ONLY}
    rows = {}
    for r in range(a.rounds):
        for hunt in COMPARED + CROSSWIND_ONLY:
            cw_out = os.path.join(work, f"{hunt}.crosswind.ndjson")
            duck_out = os.path.join(work, f"{hunt}.duckdb.ndjson")

            def crosswind():
                t = time.perf_counter()
                with open(cw_out, "w") as out:
                    run(cw + ["hunt", hunt, "--format", "json"], stdout=out)
                times[hunt]["crosswind"].append(time.perf_counter() - t)

            def duckdb():
                res = duck(a.python, "query", "--db", duckdb_file, "--hunt", hunt,
                           "--out", duck_out)
                times[hunt]["duckdb"].append(res["seconds"])

            order = [crosswind] + ([duckdb] if hunt in COMPARED else [])
            for step in order if r % 2 == 0 else reversed(order):
                step()
            if r == 0:
                c = rows_of(cw_out)
                d = rows_of(duck_out) if hunt in COMPARED else None
                rows[hunt] = (len(c), None if d is None else len(d),
                              None if d is None else agree(c, d))

    print(f"\nmedians of {a.rounds} rounds, whole store; ratio = crosswind / DuckDB")
    print(f"{'hunt':<18}{'crosswind':>11}{'DuckDB':>9}{'ratio':>8}{'rows':>10}{'DuckDB rows':>13}  same rows")
    for hunt in COMPARED + CROSSWIND_ONLY:
        c = statistics.median(times[hunt]["crosswind"])
        d = statistics.median(times[hunt]["duckdb"]) if times[hunt]["duckdb"] else None
        n, dn, same = rows[hunt]
        verdict = ("n/a" if same is None else ("yes" if same else
                   ("NO" if hunt in EXACT else "no (windows differ)")))
        print(f"{hunt:<18}{c:>10.3f}s" + (f"{d:>8.3f}s{c / d:>8.2f}" if d else f"{'-':>9}{'-':>8}")
              + f"{n:>10}{'-' if dn is None else dn:>13}  {verdict}")
    if not a.work:
        shutil.rmtree(work)
    bad = [h for h in EXACT if rows[h][2] is False]
    if bad:
        sys.exit(f"rows differ from DuckDB's for {', '.join(bad)}")


if __name__ == "__main__":
    main()
