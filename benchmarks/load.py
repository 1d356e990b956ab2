"""Load test: `python benchmarks/load.py [--clients 8] [--compares 25]` against a locally launched app.

Each client (a thread with its own gradio_client) sends M comparisons of real photos; prints requests/s,
p50/p95/max latency, errors, wrong verdicts, the server process's peak RSS, and where a request's time goes:
the handler's own stages (from the app's log), the rest of the server's CPU time (Gradio: uploads, queue,
file caching, serving the result images), and the clients' own CPU time (they share this machine's cores).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import TRIO, free_port, pct, start_app, wait_for_answer  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--compares", type=int, default=25)
    p.add_argument("--no-download", dest="download", action="store_false",
                   help="clients do not fetch the result images (an API user who wants only the verdict; a browser "
                        "fetches them, as the clients do by default)")
    args = p.parse_args(argv)
    port = free_port()
    log = tempfile.TemporaryFile(mode="w+")
    proc = start_app(port, log=log)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_answer(url, TRIO)
        server = psutil.Process(proc.pid)
        me = psutil.Process()
        log.seek(0, 2)
        log_start = log.tell()
        cpu0 = sum(server.cpu_times()[:2]), sum(me.cpu_times()[:2])
        peak = [server.memory_info().rss]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], sum(p.memory_info().rss for p in [server, *server.children(recursive=True)]))
                except psutil.Error:
                    pass
                time.sleep(0.1)

        latencies, errors, wrong = [], [], []

        def client(k):
            from gradio_client import Client, handle_file

            c = Client(url, verbose=False, **({} if args.download else {"download_files": False}))
            for i in range(args.compares):
                order = (0, 1, 2) if (k + i) % 2 == 0 else (0, 2, 1)
                t0 = time.perf_counter()
                try:
                    out = c.predict(*(handle_file(str(TRIO[j])) for j in order), api_name="/compare")
                    latencies.append((time.perf_counter() - t0) * 1e3)
                    if out[-1]["matches"] != ("A" if order[1] == 1 else "B"):
                        wrong.append(out[-1]["matches"])
                except Exception as exc:  # noqa: BLE001 - counted
                    errors.append(repr(exc))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        stop.set()
        server_cpu, client_cpu = sum(server.cpu_times()[:2]) - cpu0[0], sum(me.cpu_times()[:2]) - cpu0[1]
        n = len(latencies)
        print(f"# FaceSim load, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs: {args.clients} clients x "
              f"{args.compares} compares")
        print(f"requests: {n} ok, {len(errors)} errors, {len(wrong)} wrong verdicts in {wall:.1f} s "
              f"({n / wall:.1f} req/s)")
        if n:
            print(f"latency: p50 {pct(latencies, 50):.0f} ms, p95 {pct(latencies, 95):.0f} ms, "
                  f"max {max(latencies):.0f} ms")
        print(f"server peak RSS: {peak[0] / 2**20:.0f} MB")
        if n:
            log.seek(log_start)
            stages = [tuple(float(v) for v in m) for m in re.findall(
                r"timings: compare ([\d.]+) ms, crops and table ([\d.]+) ms, boxed photos ([\d.]+) ms", log.read())]
            if stages:
                s = np.median(np.array(stages), axis=0)
                total = server_cpu / n * 1e3
                print(f"where a request's time goes (median per request, ms; {len(stages)} handler logs):")
                print("| part | ms |\n|---|---|")
                print(f"| facesim.compare (library: decode, detect, align, embed) | {s[0]:.0f} (wall) |")
                print(f"| crops (inline JPEGs) and table (render) | {s[1]:.0f} (wall) |")
                print(f"| boxed photos (decode at reduced size, draw, JPEG) | {s[2]:.0f} (wall) |")
                print(f"| server CPU per request, all of it (handler + Gradio) | {total:.0f} (CPU) |")
                print(f"| client CPU per request (gradio_client, same machine) | {client_cpu / n * 1e3:.0f} (CPU) |")
        for e in errors[:5]:
            print("error:", e)
        return 1 if errors or wrong else 0
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    sys.exit(main())
