"""Benchmark 5: the driver's AWS overheads, as counts, against a moto server.

A tiny counting reverse proxy (below) sits between `emr-driver` and moto and records every
request with its time and operation (the `X-Amz-Target` header for EMR, method + path for S3).
The driver talks to the proxy through `AWS_ENDPOINT_URL`; the set-up (cluster, steps, bucket)
goes to moto directly with boto3, so it is not counted.

- Requests per poll: a cluster with 1, 5 and 20 steps (moto leaves them PENDING / RUNNING
  forever), `emr-driver wait --interval 1s --timeout 5s` on all of them. The polls are counted
  independently of the requests: requests closer than half an interval belong to one poll.
- Uploads on a second deploy of unchanged artifacts: `emr-driver deploy --target emr` twice;
  the S3 `PUT` requests of the second one.
- Peak RSS of the driver while polling 20 steps (`/usr/bin/time -v`).

Run from the repository root: `.venv/bin/python benchmarks/bench_driver_overheads.py`
"""

from __future__ import annotations

import http.client
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    DRIVER,
    OUT,
    REPO,
    announce,
    figure,
    require_driver,
    say,
    show_command,
)

INTERVAL_SECONDS = 1.0
TIMEOUT = "5s"
CLUSTER_SIZES = (1, 5, 20)
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class CountingProxy:
    """Forwards every request to `upstream_port` and remembers (time, operation)."""

    def __init__(self, upstream_port: int):
        self.requests: list[tuple[float, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                target = self.headers.get("X-Amz-Target")
                operation = target.split(".")[-1] if target else f"{self.command} {self.path}"
                proxy.requests.append((time.monotonic(), operation))
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                # A HEAD answer keeps the object's Content-Length (the deploy compares sizes);
                # any other answer is re-sent whole, so it carries its body's length.
                keep_length = self.command == "HEAD"
                for key, value in response.getheaders():
                    skip = ("transfer-encoding", "connection") + (
                        () if keep_length else ("content-length",)
                    )
                    if key.lower() not in skip:
                        self.send_header(key, value)
                if not keep_length:
                    self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[tuple[float, str]]:
        taken, self.requests = self.requests, []
        return taken


def polls_in(requests: list[tuple[float, str]]) -> int:
    """Bursts of requests separated by at least half a poll interval."""
    bursts, last = 0, None
    for at, _ in requests:
        if last is None or at - last >= INTERVAL_SECONDS / 2:
            bursts += 1
        last = at
    return bursts


def start_moto() -> tuple[subprocess.Popen, int]:
    port = free_port()
    binary = REPO / ".venv" / "bin" / "moto_server"
    child = subprocess.Popen(
        [str(binary), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return child, port
        except OSError:
            if time.monotonic() > deadline:
                child.kill()
                sys.exit("benchmarks: moto_server did not start")
            time.sleep(0.1)


def cluster_with_steps(emr, count: int) -> tuple[str, list[str]]:
    cluster = emr.run_job_flow(
        Name=f"bench-{count}",
        ReleaseLabel="emr-7.12.0",
        Instances={
            "MasterInstanceType": "m5.xlarge",
            "InstanceCount": 1,
            "KeepJobFlowAliveWhenNoSteps": True,
        },
        JobFlowRole="EMR_EC2_DefaultRole",
        ServiceRole="EMR_DefaultRole",
    )["JobFlowId"]
    steps = [
        {
            "Name": f"step-{i}",
            "ActionOnFailure": "CONTINUE",
            "HadoopJarStep": {"Jar": "command-runner.jar", "Args": ["spark-submit", "job.py"]},
        }
        for i in range(count)
    ]
    ids = emr.add_job_flow_steps(JobFlowId=cluster, Steps=steps)["StepIds"]
    return cluster, ids


def peak_rss_kb(report: Path) -> int:
    for line in report.read_text().splitlines():
        if "Maximum resident set size" in line:
            return int(line.rsplit(":", 1)[1])
    return -1


def main() -> int:
    announce({"DRIVER_BIN": DRIVER})
    import boto3

    driver = require_driver()
    work = OUT / "driver"
    work.mkdir(parents=True, exist_ok=True)
    moto, moto_port = start_moto()
    proxy = CountingProxy(moto_port)
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_REGION=REGION,
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
        AWS_EC2_METADATA_DISABLED="true",
    )
    direct = f"http://127.0.0.1:{moto_port}"
    emr = boto3.client(
        "emr",
        endpoint_url=direct,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        say(f"moto on :{moto_port}, counting proxy on :{proxy.port} (AWS_ENDPOINT_URL)")
        for count in CLUSTER_SIZES:
            cluster, ids = cluster_with_steps(emr, count)
            argv = [
                "/usr/bin/time",
                "-v",
                "-o",
                str(work / f"time-wait-{count}.txt"),
                driver,
                "--output",
                "json",
                "wait",
                "--cluster-id",
                cluster,
                *ids,
                "--interval",
                f"{INTERVAL_SECONDS:g}s",
                "--timeout",
                TIMEOUT,
                "--no-diagnose",
            ]
            say(f"\n== wait on {count} running step(s) ==")
            show_command(["AWS_ENDPOINT_URL=" + env["AWS_ENDPOINT_URL"], *argv])
            proxy.take()
            done = subprocess.run([str(a) for a in argv], env=env, capture_output=True, text=True)
            requests = proxy.take()
            if not requests:
                say(done.stdout + done.stderr)
                sys.exit(f"benchmarks: `wait` sent no request (exit code {done.returncode})")
            polls = polls_in(requests)
            operations = sorted({op for _, op in requests})
            say(
                f"  exit code {done.returncode} (timed out, as expected: moto never ends a step); "
                f"{len(requests)} requests in {polls} polls: {', '.join(operations)}"
            )
            figure(f"driver.wait_{count}_steps.requests", len(requests))
            figure(f"driver.wait_{count}_steps.polls", polls)
            figure(
                f"driver.wait_{count}_steps.requests_per_poll",
                f"{len(requests) / polls:.2f}" if polls else "n/a",
            )
            figure(
                f"driver.wait_{count}_steps.peak_rss_kb",
                peak_rss_kb(work / f"time-wait-{count}.txt"),
                "KiB",
            )

        s3 = boto3.client(
            "s3",
            endpoint_url=direct,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        s3.create_bucket(Bucket="movie-analytics-dev-raw")
        say("\n== deploy twice, artifacts unchanged ==")
        for attempt in ("first", "second"):
            argv = [driver, "--output", "json", "deploy", "--target", "emr"]
            show_command(["AWS_ENDPOINT_URL=" + env["AWS_ENDPOINT_URL"], *argv])
            proxy.take()
            done = subprocess.run(
                [str(a) for a in argv], env=env, capture_output=True, text=True, cwd=REPO
            )
            if done.returncode != 0:
                say(done.stderr)
                sys.exit(f"benchmarks: deploy failed with exit code {done.returncode}")
            requests = proxy.take()
            puts = [op for _, op in requests if op.startswith("PUT ")]
            kinds = Counter(
                op.split(" ")[0] + " " + op.split("?")[0].rsplit("/", 1)[-1] for _, op in requests
            )
            say(
                f"  {len(requests)} requests, {len(puts)} uploads: "
                + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
            )
            figure(f"driver.deploy_{attempt}.requests", len(requests))
            figure(f"driver.deploy_{attempt}.uploads", len(puts))
    finally:
        proxy.server.shutdown()
        moto.terminate()
        moto.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
