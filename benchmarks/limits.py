"""The client at the physical limit: 1 GiB up and down, plain HTTP and TLS, vs curl (issue 10).

::

    .venv/bin/python benchmarks/limits.py [--size-mib 1024] [--repeat 3]
        [--small-mib 16] [--huge-mib 4096] [--only upload|download]

One command, everything measured in the same run on 127.0.0.1:

- a native peer (``native_peer.c``, compiled here with gcc) serves as the S3 sink
  (PUT: reads exactly ``Content-Length`` bytes and throws them away without even
  copying them, ``recv(MSG_TRUNC)``; TLS: ``SSL_read``) and as the source (GET:
  ``sendfile(2)``; TLS: ``SSL_write``), plain and over TLS with a self-signed
  certificate made here (``openssl``); a stub Runway API (token, ``POST /jobs``
  whose upload URL points at the sink, start) in this process;
- contestants, each a whole process measured for wall time, CPU (user+system,
  from ``wait4``) and peak RSS (GNU ``time``), alternating, ``--repeat`` rounds:
  upload: ``curl -T f -H 'Expect:'`` (``--cacert`` on TLS), the client's
  ``RunwayClient.load_files`` (``bench_load.py``; with the SHA-256 receipt, with
  ``upload_sha256=False``, and with ``verify_etag=True`` on plain HTTP), and
  ``hashlib.file_digest(f, "sha256")`` of the same file in a bare process;
  download: ``curl -o`` (then its file ``fsync``ed, timed apart) and the client's
  ``download_file`` step (``bench_fetch.py``: checked, hashed, fsynced, renamed);
- the peer's own ceiling: the native peer sending to / fetching from itself
  (plain: zero-copy ``sendfile``/``MSG_TRUNC``; TLS: from/into memory), printed
  beside every contestant. A scenario is REFUSED (no ratios) when the peer's own
  CPU time (it logs it per request) exceeds 80 % of any contestant's transfer
  time: then the peer might be what is measured. A contestant within 20 % of the
  ceiling is only noted: on loopback the ceiling is bound by the sender's side of
  the kernel (zero-copy ``sendfile`` is how the client sends too, and curl is as
  close on this machine), not by the peer, which the peer-busy figure shows.

Prints ``os.getloadavg()`` first (and warns above 0.5: the machine is shared),
every run, then per scenario the medians, CPU seconds per GiB, peak RSS, the
ratios and the goal verdicts of issue 10, then the flat-memory check (the client
uploading ``--small-mib``, ``--size-mib`` and a sparse ``--huge-mib`` file).
Exit status: 0 when every check ran (goals met or not: the verdicts say), 1 when
a transfer or check failed or a scenario was refused, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

HERE: Final = Path(__file__).resolve().parent
MIB: Final = 1024 * 1024
GIB: Final = 1024 * MIB
GNU_TIME: Final = "/usr/bin/time"
CEILING_MARGIN: Final = 1.2
"""A contestant faster than ceiling x this is too close to the peer's own limit."""
PEER_BUSY_LIMIT: Final = 0.8
"""The peer's CPU time over a transfer's time above which the peer may be the limit."""


class Failed(Exception):
    """A transfer or a check failed."""


def check(ok: bool, message: str) -> None:
    if not ok:
        raise Failed(message)


# ----------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Measured:
    wall: float
    cpu: float
    rss_mib: float
    stdout: str
    stderr: str
    code: int


def contestant_env(scratch: Path) -> dict[str, str]:
    """The environment of every contestant: this one, except that Python may cache
    bytecode (in the scratch folder), as an installed package has it precompiled;
    ``PYTHONDONTWRITEBYTECODE`` would make every client process compile the library."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(scratch / "pycache")
    return env


def measure(command: Sequence[str], scratch: Path) -> Measured:
    """Run ``command``: wall seconds, CPU seconds (user+system, the process and its
    children, from ``wait4``), peak RSS (GNU time's ``%M``), output."""
    rss_file = scratch / "rss.txt"
    rss_file.unlink(missing_ok=True)
    timed = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *command]
    with open(scratch / "out.txt", "w+b") as out, open(scratch / "err.txt", "w+b") as err:
        began = time.perf_counter()
        process = subprocess.Popen(
            timed, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=contestant_env(scratch)
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    words = rss_file.read_text().split() if rss_file.exists() else []
    rss = int(words[-1]) / 1024 if words and words[-1].isdigit() else float("nan")
    return Measured(wall, usage.ru_utime + usage.ru_stime, rss, stdout, stderr, process.returncode)


# ----------------------------------------------------------------------------- the native peer


class Peer:
    """``native_peer serve`` on 127.0.0.1, plain or TLS; its request log."""

    def __init__(self, binary: Path, root: Path, scratch: Path, tls: tuple[Path, Path] | None):
        self.tls = tls is not None
        tag = "tls" if tls else "plain"
        self.log = scratch / f"peer-{tag}.log"
        port_file = scratch / f"peer-{tag}.port"
        extra = [str(tls[0]), str(tls[1])] if tls else []
        self.binary = binary
        self.process = subprocess.Popen(
            [str(binary), "serve", str(port_file), str(root), str(self.log), *extra]
        )
        until = time.monotonic() + 10
        while not (port_file.exists() and port_file.read_text().strip()):
            check(time.monotonic() < until, "the native peer did not start")
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        self.origin = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

    def lines(self) -> list[list[str]]:
        return (
            [line.split() for line in self.log.read_text().splitlines()]
            if self.log.exists()
            else []
        )

    def last(self, method: str, path: str) -> list[str]:
        found = [w for w in self.lines() if w[0] == method and w[1] == path]
        check(len(found) == 1, f"peer saw {len(found)} {method} {path}, expected 1")
        return found[0]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=5)


# ----------------------------------------------------------------------------- the stub Runway API


class StubApi:
    """Token, ``POST /jobs`` (upload URL at the current sink, with the file's MD5 for the
    sink to echo as ETag), ``POST /jobs/<uid>/start``: just enough of CONTRACT.md."""

    def __init__(self) -> None:
        self.upload_base = ""
        self.etag = ""
        self.paths: list[str] = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/oauth/token":
                    status, body = (
                        200,
                        {
                            "access_token": "bench.token.value",
                            "token_type": "Bearer",
                            "expires_in": 3600,
                        },
                    )
                elif self.path == "/api/v1/jobs":
                    uid = str(uuid.uuid4())
                    path = f"/upload-{uid}"
                    stub.paths.append(path)
                    url = f"{stub.upload_base}{path}?etag={stub.etag}&X-Amz-Signature=bench"
                    status, body = 201, {"uid": uid, "uploadUrls": {"INPUT_FILE": url}}
                elif self.path.startswith("/api/v1/jobs/") and self.path.endswith("/start"):
                    status, body = 202, {}
                else:
                    status, body = 404, {"statusCode": 404, "message": "Not found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- runs


@dataclass
class Runs:
    """Every measured run of one scenario, by contestant."""

    name: str
    walls: dict[str, list[float]] = field(default_factory=dict)
    cpus: dict[str, list[float]] = field(default_factory=dict)
    rss: dict[str, list[float]] = field(default_factory=dict)
    peer_cpu: dict[str, list[float]] = field(default_factory=dict)
    xfer: dict[str, list[float]] = field(default_factory=dict)
    imports: dict[str, list[float]] = field(default_factory=dict)

    def add(
        self, who: str, wall: float, cpu: float, rss: float, xfer: float, peer_cpu: float | None
    ) -> None:
        self.walls.setdefault(who, []).append(wall)
        self.cpus.setdefault(who, []).append(cpu)
        self.rss.setdefault(who, []).append(rss)
        self.xfer.setdefault(who, []).append(xfer)
        if peer_cpu is not None:
            self.peer_cpu.setdefault(who, []).append(peer_cpu)
        shown = f", peer CPU {peer_cpu:.3f} s" if peer_cpu is not None else ""
        print(
            f"  {self.name:15} {who:22} wall {wall:7.3f} s  xfer {xfer:7.3f} s  "
            f"CPU {cpu:6.3f} s  RSS {rss:6.1f} MiB{shown}",
            flush=True,
        )

    def median(self, who: str) -> float:
        return statistics.median(self.walls[who])

    def borrow(self, other: Runs, who: str) -> None:
        """Show ``other``'s runs of ``who`` here too (the hashing floor is one per round)."""
        if who in other.walls and who not in self.walls:
            self.walls[who] = other.walls[who]
            self.cpus[who] = other.cpus[who]
            self.rss[who] = other.rss[who]
            self.xfer[who] = other.xfer[who]


@dataclass
class Bench:
    args: argparse.Namespace
    scratch: Path
    curl: str
    binary: Path
    cert: Path
    key: Path
    big: Path
    big_sha256: str
    big_md5: str
    api: StubApi
    peers: dict[str, Peer]
    counter: int = 0

    def label(self) -> str:
        self.counter += 1
        return f"/r{self.counter}"

    # -- upload contestants

    def curl_put(self, kind: str, runs: Runs) -> None:
        peer = self.peers[kind]
        path = self.label()
        cmd = [self.curl, "-sS", "-o", "/dev/null", "-T", str(self.big), "-H", "Expect:",
               "-H", "Content-Type: application/octet-stream",
               "-w", "%{http_code} %{time_total}", f"{peer.origin}{path}?X-Amz-Signature=bench"]  # fmt: skip
        if peer.tls:
            cmd[1:1] = ["--cacert", str(self.cert)]
        done = measure(cmd, self.scratch)
        check(
            done.code == 0 and done.stdout.startswith("200"),
            f"curl PUT: {done.stdout} {done.stderr}",
        )
        words = peer.last("PUT", path)
        check(int(words[3]) == self.big.stat().st_size, f"curl PUT: the sink got {words[3]} bytes")
        runs.add(
            "curl",
            done.wall,
            done.cpu,
            done.rss_mib,
            float(done.stdout.split()[1]),
            float(words[5]),
        )

    def client_put(
        self, kind: str, runs: Runs, who: str, *flags: str, file: Path | None = None
    ) -> Measured:
        peer = self.peers[kind]
        file = file or self.big
        self.api.upload_base = peer.origin
        self.api.etag = self.big_md5 if file == self.big else "0"
        cmd = [sys.executable, str(HERE / "bench_load.py"), "--api", self.api.origin,
               "--file", str(file), *flags]  # fmt: skip
        if peer.tls:
            cmd += ["--ca", str(self.cert)]
        done = measure(cmd, self.scratch)
        check(done.code == 0, f"client load ({who}): {done.stderr.strip()[-500:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        size = file.stat().st_size
        check(report["bytes"] == size, f"client receipt: {report['bytes']} bytes")
        if "--no-sha256" in flags:
            check(report["sha256"] == "None", f"checksum off, yet sha256 {report['sha256']}")
        elif file == self.big:
            check(report["sha256"] == self.big_sha256, "client receipt: wrong sha256")
        words = peer.last("PUT", self.api.paths[-1])
        check(int(words[3]) == size, f"client PUT: the sink got {words[3]} of {size} bytes")
        runs.imports.setdefault(who, []).append(float(report["import_seconds"]))
        runs.add(
            who, done.wall, done.cpu, done.rss_mib, float(report["load_seconds"]), float(words[5])
        )
        return done

    def hash_floor(self, runs: Runs) -> None:
        code = (
            "import hashlib,sys\n"
            "with open(sys.argv[1],'rb') as f: print(hashlib.file_digest(f,'sha256').hexdigest())"
        )
        done = measure([sys.executable, "-c", code, str(self.big)], self.scratch)
        check(done.stdout.strip() == self.big_sha256, "hashlib floor: wrong digest")
        runs.add("hashlib.file_digest", done.wall, done.cpu, done.rss_mib, done.wall, None)

    def ceiling_put(self, kind: str, runs: Runs) -> None:
        peer = self.peers[kind]
        path = self.label()
        cmd = [str(self.binary), "put", str(peer.port), path, str(self.big)] + (
            ["tls"] if peer.tls else []
        )
        done = measure(cmd, self.scratch)
        check(done.code == 0, f"ceiling PUT: {done.stdout} {done.stderr}")
        words = peer.last("PUT", path)
        runs.add(
            "ceiling",
            done.wall,
            done.cpu,
            done.rss_mib,
            float(done.stdout.split()[0]),
            float(words[5]),
        )

    # -- download contestants

    def curl_get(self, kind: str, runs: Runs) -> None:
        peer = self.peers[kind]
        dest = self.scratch / "down" / "curl.bin"
        dest.parent.mkdir(exist_ok=True)
        cmd = [self.curl, "-sS", "-o", str(dest), "-w", "%{http_code} %{time_total}", f"{peer.origin}/big.bin?X-Amz-Signature=bench"]  # fmt: skip
        if peer.tls:
            cmd[1:1] = ["--cacert", str(self.cert)]
        before = len(peer.lines())
        done = measure(cmd, self.scratch)
        check(
            done.code == 0 and done.stdout.startswith("200"),
            f"curl GET: {done.stdout} {done.stderr}",
        )
        began = time.perf_counter()
        with open(dest, "rb") as written:
            os.fsync(written.fileno())
        synced = time.perf_counter() - began
        check(dest.stat().st_size == self.big.stat().st_size, "curl GET: wrong size")
        words = peer.lines()[before]
        runs.add(
            "curl",
            done.wall,
            done.cpu,
            done.rss_mib,
            float(done.stdout.split()[1]),
            float(words[5]),
        )
        runs.add(
            "curl + fsync",
            done.wall + synced,
            done.cpu,
            done.rss_mib,
            float(done.stdout.split()[1]) + synced,
            None,
        )
        dest.unlink()

    def client_get(self, kind: str, runs: Runs) -> None:
        peer = self.peers[kind]
        dest = self.scratch / "down"
        dest.mkdir(exist_ok=True)
        cmd = [sys.executable, str(HERE / "bench_fetch.py"), "--url", f"{peer.origin}/big.bin?X-Amz-Signature=bench", "--dest", str(dest)]  # fmt: skip
        if peer.tls:
            cmd += ["--ca", str(self.cert)]
        before = len(peer.lines())
        done = measure(cmd, self.scratch)
        check(done.code == 0, f"client download: {done.stderr.strip()[-500:]}")
        report = json.loads(done.stdout.strip().splitlines()[-1])
        check(report["sha256"] == self.big_sha256, "client download: wrong sha256 in its receipt")
        check(sorted(p.name for p in dest.iterdir()) == ["big.bin"], "client download: stray files")
        check((dest / "big.bin").stat().st_size == self.big.stat().st_size, "client download: size")
        words = peer.lines()[before]
        runs.imports.setdefault("client", []).append(float(report["import_seconds"]))
        runs.add(
            "client",
            done.wall,
            done.cpu,
            done.rss_mib,
            float(report["load_seconds"]),
            float(words[5]),
        )
        (dest / "big.bin").unlink()

    def ceiling_get(self, kind: str, runs: Runs) -> None:
        peer = self.peers[kind]
        before = len(peer.lines())
        cmd = [str(self.binary), "get", str(peer.port), "/big.bin"] + (["tls"] if peer.tls else [])
        done = measure(cmd, self.scratch)
        check(done.code == 0, f"ceiling GET: {done.stdout} {done.stderr}")
        words = peer.lines()[before]
        runs.add(
            "ceiling",
            done.wall,
            done.cpu,
            done.rss_mib,
            float(done.stdout.split()[0]),
            float(words[5]),
        )


# ----------------------------------------------------------------------------- the report


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def report(runs: Runs, size: int, goals: list[tuple[str, str, str, float]]) -> bool:
    """Print the table and the goals ``(label, who, against, limit)``; False if refused."""
    gib = size / GIB
    print(f"\n{runs.name}: medians of {len(runs.walls['ceiling'])} runs, {size // MIB} MiB")
    print(
        f"  {'':22}{'wall s':>9}{'min s':>9}{'xfer s':>9}{'CPU s/GiB':>11}{'RSS MiB':>9}{'peer busy':>11}"
    )
    for who in runs.walls:
        wall = runs.median(who)
        xfer = statistics.median(runs.xfer[who])
        busy = (
            f"{statistics.median(runs.peer_cpu[who]) / xfer:10.0%}"
            if who in runs.peer_cpu and xfer > 0
            else f"{'':10}"
        )
        print(
            f"  {who:22}{wall:9.3f}{min(runs.walls[who]):9.3f}{xfer:9.3f}"
            f"{statistics.median(runs.cpus[who]) / gib:11.3f}{max(runs.rss[who]):9.1f} {busy}"
        )
    ceiling = statistics.median(runs.xfer["ceiling"])
    refused = False
    for who in runs.walls:
        if who not in runs.peer_cpu or who == "ceiling":
            continue
        xfer = statistics.median(runs.xfer[who])
        near = xfer < ceiling * CEILING_MARGIN
        load = statistics.median(runs.peer_cpu[who]) / xfer if xfer > 0 else 1.0
        if near:
            print(
                f"  note: {who} is within 20 % of the ceiling ({xfer:.3f} s vs {ceiling:.3f} s): "
                "as fast as a sender can feed the peer here; the peer-busy figure says "
                "whether the peer or the sender's side of the loopback is the limit"
            )
        if load > PEER_BUSY_LIMIT:
            print(
                f"  REFUSED: the peer was busy {load:.0%} of {who}'s transfer "
                f"(limit {PEER_BUSY_LIMIT:.0%}): the peer may be what is measured"
            )
            refused = True
    if refused:
        print("  (no ratios reported for this scenario)")
        return False
    print(
        f"  peer ceiling {ceiling:.3f} s; the peer busy under {PEER_BUSY_LIMIT:.0%} of "
        "every transfer: the peer is not what is measured"
    )
    for who, imports in runs.imports.items():
        wall, xfer, imported = (
            runs.median(who),
            statistics.median(runs.xfer[who]),
            statistics.median(imports),
        )
        print(
            f"  where {who}'s {wall:.3f} s go (medians): import runway_client {imported:.3f} s, "
            f"the call {xfer:.3f} s (its API calls too), the rest {wall - imported - xfer:.3f} s "
            "(interpreter start and exit, RunwayClient())"
        )
    for label, who, against, limit in goals:
        if who not in runs.walls:
            continue
        names = against.split("|")
        floor = max(runs.median(n) for n in names if n in runs.walls)
        ratio = runs.median(who) / floor
        goal = f"(goal <= {limit:.2f}x) {verdict(ratio <= limit)}" if limit < 99 else "(measured)"
        print(f"  {label}: {ratio:.2f}x {goal}")
        if against == "curl" and who in runs.imports:
            call, curl_xfer = (statistics.median(runs.xfer[n]) for n in (who, "curl"))
            print(
                f"    split: the client's call / curl's time_total "
                f"{call / curl_xfer:.2f}x; outside it, the client process "
                f"{runs.median(who) - call:.3f} s (Python's start, imports, exit) vs curl's "
                f"{runs.median('curl') - curl_xfer:.3f} s"
            )
    return True


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small-mib", type=int, default=16)
    parser.add_argument(
        "--huge-mib", type=int, default=4096, help="sparse file for the RSS check; 0: skip"
    )
    parser.add_argument("--only", choices=("upload", "download"), default=None)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    print(
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; cpus {os.cpu_count()}; python {sys.version.split()[0]}"
    )
    if load[0] > 0.5:
        print(f"WARNING: load average {load[0]:.2f} > 0.5: the machine is busy, timings are noisy")
    tools = {name: shutil.which(name) for name in ("curl", "gcc", "openssl")}
    missing = [name for name, where in tools.items() if where is None] + (
        [] if os.access(GNU_TIME, os.X_OK) else [GNU_TIME]
    )
    if missing:
        print(f"limits: missing {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="runway-limits-") as temp:
        try:
            return run(args, Path(temp), tools)
        except Failed as error:
            print(f"limits: FAILED: {error}", file=sys.stderr)
            return 1


def run(args: argparse.Namespace, scratch: Path, tools: dict[str, str | None]) -> int:
    binary = scratch / "native_peer"
    subprocess.run(
        [
            str(tools["gcc"]),
            "-O2",
            "-o",
            str(binary),
            str(HERE / "native_peer.c"),
            "-lssl",
            "-lcrypto",
        ],
        check=True,
    )
    cert, key = scratch / "cert.pem", scratch / "key.pem"
    subprocess.run(
        [str(tools["openssl"]), "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    root = scratch / "files"
    root.mkdir()
    big, small, huge = root / "big.bin", root / "small.bin", root / "huge.bin"
    began = time.perf_counter()
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with open(big, "wb") as out:
        for _ in range(args.size_mib // 8 + (args.size_mib % 8 > 0)):
            chunk = os.urandom(min(8 * MIB, args.size_mib * MIB - out.tell()))
            sha.update(chunk)
            md5.update(chunk)
            out.write(chunk)
    small.write_bytes(os.urandom(args.small_mib * MIB))
    if args.huge_mib:
        with open(huge, "wb") as out:
            out.truncate(args.huge_mib * MIB)  # sparse: no disk, no page cache to fill
    print(
        f"wrote {args.size_mib} MiB of random bytes (+{args.small_mib} MiB, +{args.huge_mib} MiB sparse) in {time.perf_counter() - began:.1f} s; gcc-built peer; self-signed TLS certificate",
        flush=True,
    )
    api = StubApi()
    peers = {
        "plain": Peer(binary, root, scratch, None),
        "tls": Peer(binary, root, scratch, (cert, key)),
    }
    bench = Bench(
        args,
        scratch,
        str(tools["curl"]),
        binary,
        cert,
        key,
        big,
        sha.hexdigest(),
        md5.hexdigest(),
        api,
        peers,
    )
    size = big.stat().st_size
    scenarios: dict[str, Runs] = {}
    ok = True
    try:
        # warm-up: the page cache, Python's bytecode cache, the peer
        print(
            f"contestants run with PYTHONPYCACHEPREFIX={scratch / 'pycache'} (bytecode cached, as installed)"
        )
        bench.client_put("plain", Runs("warm-up"), "client", file=small)
        bench.client_get("plain", Runs("warm-up"))
        bench.curl_put("plain", Runs("warm-up"))
        for round_number in range(1, args.repeat + 1):
            print(
                f"round {round_number} of {args.repeat}; load average {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            for kind in ("plain", "tls"):
                if args.only in (None, "upload"):
                    runs = scenarios.setdefault(f"upload {kind}", Runs(f"upload {kind}"))
                    bench.ceiling_put(kind, runs)
                    bench.curl_put(kind, runs)
                    bench.client_put(kind, runs, "client (sha256)")
                    bench.client_put(kind, runs, "client (no checksum)", "--no-sha256")
                    if kind == "plain":
                        bench.client_put(kind, runs, "client (sha256+etag)", "--verify-etag")
                        bench.hash_floor(runs)
                if args.only in (None, "download"):
                    runs = scenarios.setdefault(f"download {kind}", Runs(f"download {kind}"))
                    bench.ceiling_get(kind, runs)
                    bench.curl_get(kind, runs)
                    bench.client_get(kind, runs)
        floor = scenarios.get("upload plain")
        for name, runs in scenarios.items():
            if floor is not None:
                runs.borrow(floor, "hashlib.file_digest")
            if name.startswith("upload"):
                goals = [
                    (
                        "client (sha256) / max(curl, hashlib)",
                        "client (sha256)",
                        "curl|hashlib.file_digest",
                        1.15,
                    ),
                    ("client (no checksum) / curl", "client (no checksum)", "curl", 1.0),
                    (
                        "cost of verify_etag: client (sha256+etag) / client (sha256)",
                        "client (sha256+etag)",
                        "client (sha256)",
                        99.0,
                    ),
                ]
            else:
                goals = [
                    (
                        "client / max(curl + its fsync, hashlib)",
                        "client",
                        "curl + fsync|hashlib.file_digest",
                        1.15,
                    ),
                    ("client / curl alone (no fsync, no hash)", "client", "curl", 99.0),
                ]
            ok = report(runs, size, goals) and ok
        if args.only in (None, "upload"):
            print("\nflat memory: the client (sha256 on, plain) uploading three sizes, peak RSS")
            rss = Runs("memory")
            sizes = [(small, args.small_mib), (big, args.size_mib)] + (
                [(huge, args.huge_mib)] if args.huge_mib else []
            )
            seen = []
            for file, mib in sizes:
                done = bench.client_put("plain", rss, f"client {mib} MiB", file=file)
                seen.append(done.rss_mib)
            spread = max(seen) - min(seen)
            print(
                f"  peak RSS {', '.join(f'{r:.1f}' for r in seen)} MiB: spread {spread:.1f} MiB; "
                f"goal < 64 MiB and flat (spread <= 8 MiB): {verdict(max(seen) < 64 and spread <= 8)}"
            )
    finally:
        for peer in peers.values():
            peer.stop()
        api.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
