"""Load driver for scripts/stress: raw HTTP/1.1 over asyncio (stdlib only), one connection per request.

Phases (each bounded in time and count):
  capacity  closed loop, CONCURRENCY clients, for CAPACITY_SECONDS: the measured capacity (answers/s).
  burst     open loop at BURST_FACTOR x capacity for BURST_SECONDS (at most BURST_MAX requests): every
            answer must be a 200, or a 503 with Retry-After; no connection errors; sent == answered.
  sigterm   closed loop at CONCURRENCY for a while, SIGTERM to the server in the middle: every request
            written before the signal is answered; afterwards connections are refused cleanly; the
            server exits within the drain timeout.
Prints one JSON object per phase; exits 1 when a check fails.
"""

import asyncio
import base64
import json
import os
import signal
import struct
import sys
import time
import zlib

HOST = "127.0.0.1"
PORT = int(os.environ["STRESS_PORT"])
PID = int(os.environ["STRESS_PID"])
CONCURRENCY = int(os.environ.get("STRESS_CONCURRENCY", "32"))
CAPACITY_SECONDS = float(os.environ.get("STRESS_CAPACITY_SECONDS", "5"))
BURST_FACTOR = float(os.environ.get("STRESS_BURST_FACTOR", "10"))
BURST_SECONDS = float(os.environ.get("STRESS_BURST_SECONDS", "5"))
BURST_MAX = int(os.environ.get("STRESS_BURST_MAX", "50000"))
# The driver's own bound on open connections, below the server's --max-connections.
MAX_OPEN = int(os.environ.get("STRESS_MAX_OPEN", "900"))
DEADLINE_S = float(os.environ["STRESS_DEADLINE_MS"]) / 1000
DRAIN_TIMEOUT_S = float(os.environ["STRESS_DRAIN_TIMEOUT_S"])
SIGTERM_AFTER = float(os.environ.get("STRESS_SIGTERM_AFTER_SECONDS", "2"))
MAX_RSS_MIB = float(os.environ.get("STRESS_MAX_RSS_MIB", "2048"))


def png(seed):
    """A 28x28 grayscale PNG with a seeded pattern (the service decodes real bytes)."""
    rows = b"".join(b"\x00" + bytes(((x * seed + y * 7) % 256) for x in range(28)) for y in range(28))
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


BODY = json.dumps({"image_a": {"base64": base64.b64encode(png(3)).decode()},
                   "image_b": {"base64": base64.b64encode(png(5)).decode()}}).encode()
REQUEST = (b"POST /compare HTTP/1.1\r\nHost: simverify\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class Outcome:
    """One request: its status (None on a connection error), whether it carried Retry-After, its
    latency, whether the request was fully written, and the error's name."""
    __slots__ = ("status", "retry_after", "latency", "written_at", "error")

    def __init__(self):
        self.status, self.retry_after, self.latency, self.written_at, self.error = None, False, None, None, None


async def one_request(timeout):
    out = Outcome()
    started = time.monotonic()
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), timeout)
        writer.write(REQUEST)
        await writer.drain()
        out.written_at = time.monotonic()
        answer = await asyncio.wait_for(reader.read(-1), timeout)
        head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        if not head.startswith("http/1.1 "):
            raise ConnectionError("no answer")
        out.status = int(head[9:12])
        out.retry_after = "\r\nretry-after:" in head
        out.latency = time.monotonic() - started
    except (OSError, asyncio.TimeoutError, ConnectionError, ValueError) as e:
        out.error = type(e).__name__
    finally:
        if writer is not None:
            writer.close()
    return out


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round((len(values) - 1) * p)))] * 1000, 1)


def summary(phase, outcomes, seconds, **extra):
    ok = [o for o in outcomes if o.status == 200]
    counts = {}
    for o in outcomes:
        key = str(o.status) if o.status is not None else "error:" + o.error
        counts[key] = counts.get(key, 0) + 1
    return dict(phase=phase, seconds=round(seconds, 2), sent=len(outcomes),
                answered=sum(o.status is not None for o in outcomes), status=counts,
                ok_per_s=round(len(ok) / seconds, 1),
                p50_ms=pct([o.latency for o in ok], 0.5), p99_ms=pct([o.latency for o in ok], 0.99),
                **extra)


async def closed_loop(seconds, stop_at=None):
    outcomes = []
    end = time.monotonic() + seconds

    async def client():
        while time.monotonic() < end and not (stop_at and stop_at.is_set()):
            outcomes.append(await one_request(DEADLINE_S + 5))

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    return outcomes, time.monotonic() - started


async def burst(rate):
    count = min(BURST_MAX, int(rate * BURST_SECONDS))
    open_slots = asyncio.Semaphore(MAX_OPEN)
    late = 0
    started = time.monotonic()

    async def scheduled(i):
        nonlocal late
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        if open_slots.locked():
            late += 1  # The driver's own connection bound delayed this send.
        async with open_slots:
            return await one_request(DEADLINE_S + 5)

    outcomes = await asyncio.gather(*(scheduled(i) for i in range(count)))
    return outcomes, time.monotonic() - started, late


def peak_rss_mib():
    with open(f"/proc/{PID}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


async def sigterm_phase():
    outcomes = []
    stop = asyncio.Event()
    signalled = {}

    async def client():
        while not stop.is_set():
            outcomes.append(await one_request(DEADLINE_S + 5))

    async def terminate():
        await asyncio.sleep(SIGTERM_AFTER)
        signalled["at"] = time.monotonic()
        os.kill(PID, signal.SIGTERM)
        # Exit is watched by polling: the server is not our child.
        while os.path.exists(f"/proc/{PID}") and time.monotonic() - signalled["at"] < DRAIN_TIMEOUT_S + 5:
            try:
                with open(f"/proc/{PID}/stat") as f:
                    if f.read().split()[2] == "Z":
                        break
            except FileNotFoundError:
                break
            await asyncio.sleep(0.01)
        signalled["exited_after"] = time.monotonic() - signalled["at"]
        await asyncio.sleep(0.2)  # Clients now meet the closed port.
        stop.set()

    started = time.monotonic()
    await asyncio.gather(terminate(), *(client() for _ in range(CONCURRENCY)))
    at = signalled["at"]
    in_flight = [o for o in outcomes if o.written_at is not None and o.written_at < at]
    after = [o for o in outcomes if o.written_at is None or o.written_at >= at]
    failed_in_flight = [o for o in in_flight if o.status != 200]
    unclean = [o for o in after if o.status is None and o.error not in ("ConnectionRefusedError",)]
    return summary("sigterm", outcomes, time.monotonic() - started,
                   in_flight_at_signal=len(in_flight), failed_in_flight=len(failed_in_flight),
                   after_signal=len(after),
                   refused_after=sum(o.error == "ConnectionRefusedError" for o in after),
                   unclean_after=len(unclean),
                   unclean_errors=sorted({o.error for o in unclean}),
                   exit_seconds=round(signalled["exited_after"], 2), drain_timeout_s=DRAIN_TIMEOUT_S)


async def main():
    failures = []
    outcomes, seconds = await closed_loop(CAPACITY_SECONDS)
    capacity = summary("capacity", outcomes, seconds)
    print(json.dumps(capacity), flush=True)
    if capacity["ok_per_s"] <= 0:
        sys.exit("stress: the server answered nothing in the capacity phase")

    rate = capacity["ok_per_s"] * BURST_FACTOR
    outcomes, seconds, late = await burst(rate)
    result = summary("burst", outcomes, seconds, target_rate=round(rate, 1), late_sends=late,
                     retry_after_missing=sum(o.status == 503 and not o.retry_after for o in outcomes),
                     peak_rss_mib=peak_rss_mib())
    print(json.dumps(result), flush=True)
    bad_status = {k: v for k, v in result["status"].items() if k not in ("200", "503")}
    if bad_status:
        failures.append(f"burst: answers other than 200/503 or connection errors: {bad_status}")
    if result["retry_after_missing"]:
        failures.append(f"burst: {result['retry_after_missing']} 503s without Retry-After")
    if result["sent"] != result["answered"]:
        failures.append(f"burst: sent {result['sent']} != answered {result['answered']}")
    if result["peak_rss_mib"] is None or result["peak_rss_mib"] > MAX_RSS_MIB:
        failures.append(f"burst: peak RSS {result['peak_rss_mib']} MiB over {MAX_RSS_MIB} MiB")
    if result["p99_ms"] is not None and result["p99_ms"] > DEADLINE_S * 1000:
        failures.append(f"burst: p99 {result['p99_ms']} ms over the deadline")

    result = await sigterm_phase()
    print(json.dumps(result), flush=True)
    if result["failed_in_flight"]:
        failures.append(f"sigterm: {result['failed_in_flight']} in-flight requests failed")
    if result["unclean_after"]:
        failures.append(f"sigterm: {result['unclean_after']} unclean failures after the signal: {result['unclean_errors']}")
    if result["exit_seconds"] > DRAIN_TIMEOUT_S:
        failures.append(f"sigterm: exit after {result['exit_seconds']} s, over {DRAIN_TIMEOUT_S} s")
    for failure in failures:
        print("stress: FAIL " + failure, file=sys.stderr)
    sys.exit(1 if failures else 0)


asyncio.run(main())
