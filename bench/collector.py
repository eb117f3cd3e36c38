"""Collector benchmark: Segment-style batches of 100 events from a separate load-generator process on loopback.

Figures (one JSON line each, see bench/harness.py): sustained events/s acknowledged (durable: spooled and
fsynced) and the ratio to a bare FastAPI endpoint that parses the same JSON and discards it, measured in the same
run; the loader's drain rate into DuckDB; p99 latency at half the sustained rate; server RSS at the start and end
of a long run (``--events``, 10M in the issue).

    python -m bench.collector --seconds 10 --events 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.collect.serving import Server, free_port, new_server

from bench.harness import report

BARE = """
import sys, orjson, uvicorn
from fastapi import FastAPI, Request, Response
app = FastAPI()
@app.post("/v1/batch")
async def batch(request: Request) -> Response:
    orjson.loads(await request.body())
    return Response(b'{"success": true}', media_type="application/json")
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def _body() -> bytes:
    import orjson

    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    batch = [
        {
            "type": "track",
            "event": "Product Viewed",
            "anonymousId": f"anon-{i % 37}",
            "messageId": f"@@@@@@@@@@@@-{i}",
            "timestamp": stamp,
            "properties": {"price": 9.5 + i, "sku": f"sku-{i % 11}", "in_stock": True},
            "context": {"library": {"name": "bench"}},
        }
        for i in range(100)
    ]
    return orjson.dumps({"batch": batch})


async def _drive(url: str, key: str, seconds: float, rate: float | None, concurrency: int, out: mp.Queue) -> None:
    template = _body()
    sent, latencies, errors = 0, [], 0
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal sent, errors
        while (now := time.perf_counter()) < deadline:
            n = next(counter)
            if rate is not None and (due := start + n * 100 / rate) > now:
                await asyncio.sleep(due - now)
            body = template.replace(b"@@@@@@@@@@@@", b"%012d" % (n + os.getpid() * 10**7))
            t0 = time.perf_counter()
            response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
            latencies.append(time.perf_counter() - t0)
            if response.status_code == 200:
                sent += 100
            else:
                errors += 1

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(auth=(key, ""), limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    out.put((sent, time.perf_counter() - start, sorted(latencies), errors))


def _load(url: str, key: str, seconds: float, rate: float | None = None, concurrency: int = 32) -> tuple:
    queue: mp.Queue = mp.Queue()
    proc = mp.Process(target=lambda: asyncio.run(_drive(url, key, seconds, rate, concurrency, queue)))
    proc.start()
    result = queue.get()
    proc.join()
    return result


WRK_SCRIPT = """
-- Segment batches of 100 events, a fresh messageId for every event of every request
local counter = 0
function request()
  counter = counter + 1
  local parts = {}
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ")
  for i = 1, 100 do
    parts[i] = string.format('{"type":"track","event":"Product Viewed","anonymousId":"anon-%d",'
      .. '"messageId":"m-%s-%d-%d","timestamp":"%s","properties":{"price":%d.5,"sku":"sku-%d","in_stock":true},'
      .. '"context":{"library":{"name":"bench"}}}', i % 37, RUN, counter, i, stamp, i, i % 11)
  end
  return wrk.format("POST", "/v1/batch", {["Content-Type"]="application/json", ["Authorization"]=AUTH},
                    '{"batch":[' .. table.concat(parts, ",") .. ']}')
end
"""


def _wrk_load(
    url: str, key: str, seconds: float, connections: int = 16, rate: float | None = None
) -> tuple[int, float, list[float], int]:
    """Load from Debian's ``wrk`` (C, one thread): (events acknowledged, seconds, [p50, p99] ms, non-2xx).

    With ``rate`` (events/s), each connection waits between requests so that the total is about that rate
    (wrk's ``delay()``); the latency percentiles are then the server's at that rate.
    """
    import base64

    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    script = WRK_SCRIPT.replace("RUN", f'"{os.getpid()}-{time.monotonic_ns()}"').replace("AUTH", f'"{auth}"')
    if rate:
        script += f"function delay() return {1000.0 * connections / (rate / 100):.3f} end\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    target = url.rsplit("/v1/", 1)[0]
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, int(seconds))}s", "--latency", "-s", f.name, target]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    took_match = re.search(r"requests in ([\d.]+)(ms|s|m|h)", out)
    assert took_match is not None, out
    took = float(took_match.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[took_match.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    failed = int(errors.group(1)) if errors else 0
    percentiles = [_ms(re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)) for p in (50, 99)]
    return (requests - failed) * 100, took, percentiles, failed


def _ms(match: re.Match[str] | None) -> float:
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _sustained(url: str, key: str, seconds: float) -> tuple[int, float, list[float], int]:
    """The sustained-rate generator: ``wrk`` when the machine has it, else the Python one."""
    if shutil.which("wrk"):
        return _wrk_load(url, key, seconds)
    return _load(url, key, seconds)


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--events", type=int, default=1_000_000, help="events of the long (RSS) run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        server = new_server(Path(tmp)).start()
        try:
            _run(server, args)
        finally:
            server.stop()
    return 0


def _run(server: Server, args: argparse.Namespace) -> None:
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, "-c", BARE, str(bare_port)])
    time.sleep(2.0)
    try:
        b_sent, b_secs, _, _ = _sustained(f"http://127.0.0.1:{bare_port}/v1/batch", "k", args.seconds)
    finally:
        bare.terminate()
        bare.wait()
    sent, secs, _, errors = _sustained(server.url + "/v1/batch", server.write_key, args.seconds)
    rate, bare_rate = sent / secs, b_sent / b_secs
    report(
        "collector",
        "events_per_s_durable",
        rate,
        "events/s",
        reference="bare FastAPI parse+discard",
        reference_value=bare_rate,
        ratio=rate / bare_rate,
        target=">= 50000",
        errors=errors,
        generator="wrk" if shutil.which("wrk") else "python",
    )
    t0 = time.perf_counter()
    status = server.settle(timeout=3600)
    report(
        "collector",
        "loader_drain_seconds_after_load",
        time.perf_counter() - t0,
        "s",
        loaded=status["loaded"]["accepted"],
        loader_seconds=status["loaded"]["seconds"],
    )
    half = rate / 2
    if shutil.which("wrk"):
        # wrk's delay() sets the pause between a connection's requests; the request's own latency adds to it,
        # so a short first run measures the shortfall and the second corrects for it.
        got, took, _, _ = _wrk_load(server.url + "/v1/batch", server.write_key, 3, rate=half)
        aim = half * half / max(got / took, 1.0)
        got, took, (p50, p99), _ = _wrk_load(server.url + "/v1/batch", server.write_key, args.seconds, rate=aim)
        achieved = got / took
    else:
        _, _, lat, _ = _load(server.url + "/v1/batch", server.write_key, args.seconds, rate=half, concurrency=64)
        p50, p99, achieved = lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000, half
    report(
        "collector",
        "p99_latency_at_half_rate",
        p99,
        "ms",
        rate=half,
        achieved_rate=achieved,
        p50_ms=p50,
        target="<= 100",
    )
    _long_run(server, args.events, rate)


def _long_run(server: Server, events: int, rate: float) -> None:
    """Send ``events`` in slices; RSS after the first tenth (warm), at every slice, and after the drain."""
    assert server.proc is not None
    pid = server.proc.pid
    slice_seconds = max(5.0, events / max(rate, 1.0) / 10)
    sent, took, samples = 0, 0.0, []
    while sent < events:
        got, secs, _, _ = _sustained(server.url + "/v1/batch", server.write_key, slice_seconds)
        sent, took = sent + got, took + secs
        samples.append(_rss(pid))
    server.settle(timeout=3600)
    rss_end = _rss(pid)
    rss_start = samples[0]
    report(
        "collector",
        "rss_end_vs_start",
        rss_end / rss_start,
        "ratio",
        events=sent,
        sustained_events_per_s=sent / took,
        rss_start_mb=rss_start / 2**20,
        rss_max_mb=max(samples) / 2**20,
        rss_end_mb=rss_end / 2**20,
        rss_samples_mb=[round(r / 2**20) for r in samples],
        target="0.9 .. 1.1",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
