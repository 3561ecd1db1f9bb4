#!/usr/bin/env python3
"""Run the shell examples of README.md and docs/*.md exactly as written and check their outcomes.

Usage: scripts/doctest.py [FILE.md ...]     (default: README.md and every docs/*.md)

Environment: PC_BIN, the binary the examples run (default target/debug/parent-connection of
this checkout, which `cargo test` builds); DOCTEST_TIMEOUT, seconds a command may take (60);
DOCTEST_VERBOSE=1 also prints the output of every command that passed.

Rules (also in README "Tests"):

* Every fenced block opened by ```sh is run. A block that cannot run here (a 1M-row benchmark,
  a placeholder host or PostgreSQL URL, an interactive step) carries, on the line before its
  fence, `<!-- doctest: skip — reason -->` (the reason is required).
* Each file runs in ONE bash session (`set -uo pipefail`; the exit status of every command is
  checked, which is what `set -e` would do) in a fresh copy of the repository's tracked files
  (`git ls-files`) in a temporary folder, so `data/` and the SQLite database start empty.
  Variables a block sets are seen by later blocks of the same file.
* A file may start from another file's section: `<!-- doctest: start from README.md#quick-start -->`
  runs the blocks under that heading first, in the same session.
* A command is one line (with its `\\` continuations, or a here-document up to its end
  marker); comment lines are not run.
* Outcomes. Every `curl` must answer 2xx and every command must exit 0, unless the command's
  last line ends with an outcome comment `# → OUTCOME`:
    - `# → 404` or `# → 404 not_found`: the (last) HTTP status, then text the output must contain;
    - `# → exit 2 takes a whole number`: the exit status, then text the output must contain;
    - `# → {"status":"ok"}`: text the output (standard output and error) must contain;
    - `# → "Linda Ng" "Tom Ng" not "Dr House"`: each quoted text must appear, each after
      `not` must not.
* Substitutions, and only these: `localhost:8080` / `127.0.0.1:8080` become a free port (and
  the service binds it; `web.public_url` follows); `cargo build --release` is skipped;
  `cargo run [-q] --release --` and `target/release/parent-connection` run PC_BIN, which is
  also on PATH as `parent-connection`.
* A command that runs `serve` is started in the background and waited for (`/healthz` within
  the timeout); one written in the foreground is stopped (SIGTERM) at the end of its block, as
  a reader presses Ctrl-C, one written with `&` at the end of the file. Its log is shown when
  a later command fails. A `serve` with an `# → exit N` outcome is an ordinary command.
* A failure names the file, the block's first line, the command, expected and got, the tail
  of the command's output and of the service log. The last line is
  `doctest: N passed, M failed` (commands); the exit status is 1 when any failed.
"""

import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = float(os.environ.get("DOCTEST_TIMEOUT", "60"))
VERBOSE = os.environ.get("DOCTEST_VERBOSE") == "1"
SKIP_RE = re.compile(r"^<!--\s*doctest:\s*skip\s*[—–-]+\s*(\S.*?)\s*-->\s*$")
START_RE = re.compile(r"^<!--\s*doctest:\s*start from\s+(\S+?)#(\S+)\s*-->\s*$")
OUTCOME_RE = re.compile(r"(?:^|\s)#\s[^#→]*?→\s*(.*)$")
DONE = "__DOCTEST_DONE__"
SERVE_RE = re.compile(r"(^|\s)serve(\s|$)")


class Block:
    """One ```sh block: where it starts and its commands."""

    def __init__(self, path, line, heading, commands, skip):
        self.path, self.line, self.heading = path, line, heading
        self.commands, self.skip = commands, skip


class Command:
    """One command: its text as written, its expected outcome."""

    def __init__(self, text, line):
        self.text, self.line = text, line
        self.status = None  # expected HTTP status of the last curl
        self.exit = 0
        self.contains = []
        self.absent = []
        last = text.rstrip("\n").split("\n")[-1]
        m = OUTCOME_RE.search(last)
        if m and not _in_quotes(last, m.start()):
            self.parse_outcome(m.group(1).strip())

    def parse_outcome(self, spec):
        m = re.match(r"exit\s+(\d+)\s*(.*)$", spec)
        if m:
            self.exit, spec = int(m.group(1)), m.group(2)
        else:
            m = re.match(r"([1-5]\d\d)\b\s*(.*)$", spec)
            if m:
                self.status, spec = int(m.group(1)), m.group(2)
        spec = spec.strip()
        if not spec:
            return
        if re.fullmatch(r'(?:(?:not\s+)?"[^"]*"\s*)+', spec):
            negate = False
            for tok in shlex.split(spec):
                if tok == "not":
                    negate = True
                    continue
                (self.absent if negate else self.contains).append(tok)
                negate = False
        else:
            self.contains.append(spec)

    def expected(self):
        parts = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        parts.append(f"exit {self.exit}")
        parts += [f"contains {c!r}" for c in self.contains]
        parts += [f"lacks {a!r}" for a in self.absent]
        return ", ".join(parts)


def _in_quotes(line, pos):
    """True when position pos of line is inside single or double quotes."""
    single = double = False
    for ch in line[:pos]:
        if ch == "'" and not double:
            single = not single
        elif ch == '"' and not single:
            double = not double
    return single or double


def slug(heading):
    """GitHub's anchor of a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def parse(path):
    """The ```sh blocks of a Markdown file, and its `start from` directive."""
    lines = path.read_text(encoding="utf-8").split("\n")
    blocks, start, heading, i = [], None, "", 0
    while i < len(lines):
        line = lines[i]
        m = START_RE.match(line.strip())
        if m:
            start = (m.group(1), m.group(2))
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        if line.strip().startswith("```"):
            lang = line.strip()[3:].strip()
            fence_line = i + 1
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append((i + 1, lines[i]))
                i += 1
            if lang in ("sh", "bash", "shell"):
                prev = next((lines[j] for j in range(fence_line - 2, -1, -1) if lines[j].strip()), "")
                skip = None
                sm = SKIP_RE.match(prev.strip())
                if sm:
                    skip = sm.group(1)
                elif "doctest:" in prev:
                    sys.exit(f"{path.name}:{fence_line - 1}: a doctest comment must be "
                             "`<!-- doctest: skip — reason -->`")
                blocks.append(Block(path, fence_line, heading, split_commands(body), skip))
        i += 1
    return blocks, start


def split_commands(body):
    """Logical commands of a block: a line, or as many lines as bash needs to read a whole
    command (`\\` continuations, a here-document, a function, a loop)."""
    commands, i = [], 0
    while i < len(body):
        lineno, line = body[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        text = [line]
        while i < len(body) and not complete("\n".join(text)):
            text.append(body[i][1])
            i += 1
        commands.append(Command("\n".join(text), lineno))
    return commands


def complete(text):
    """True when bash reads text as whole commands (not cut off in a quote, loop, ...)."""
    if text.rstrip().endswith("\\"):
        return False
    r = subprocess.run(["bash", "-n"], input=text + "\n", text=True, capture_output=True)
    return "unexpected end of file" not in r.stderr and "here-document" not in r.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(text, port):
    """The only rewrites: port, binary."""
    text = re.sub(r"\b(localhost|127\.0\.0\.1):8080\b", rf"\1:{port}", text)
    text = re.sub(r"\bcargo build --release\b[^\n#]*", "true ", text)
    text = re.sub(r"\bcargo run(?: -q)? --release(?: -q)? --(?=\s)", '"$PC_BIN"', text)
    # The product only: `target/release/parent-connection-bench` (the benchmarks) stays as written.
    text = re.sub(r"(?<![\w/.-])(?:\./)?target/release/parent-connection(?![\w-])", '"$PC_BIN"', text)
    return text


PRELUDE = r"""
set -uo pipefail
shopt -s expand_aliases
curl() {
  local __h __rc
  __h=$(mktemp)
  command curl -D "$__h" "$@"
  __rc=$?
  awk 'toupper($1) ~ /^HTTP\// { c = $2 } END { if (c) print c }' "$__h" >> "$DOCTEST_STATUS"
  rm -f "$__h"
  return $__rc
}
"""


class Session:
    """One bash process that runs a file's commands one by one."""

    def __init__(self, workdir, port, bindir, tmp):
        self.workdir, self.port, self.tmp = workdir, port, tmp
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("PARENT_CONNECTION") or k in (
                "DATABASE_URL", "MAIL_URL", "SMS_URL", "JWT_SECRET", "RUST_LOG"):
                del env[k]
        env.update({
            "PATH": f"{bindir}:{env.get('PATH', '')}",
            "PC_BIN": str(bindir / "parent-connection"),
            "PARENT_CONNECTION__SERVER__BIND": f"127.0.0.1:{port}",
            "PARENT_CONNECTION__WEB__PUBLIC_URL": f"http://localhost:{port}",
            "DOCTEST_STATUS": str(tmp / "status"),
            "NO_COLOR": "1",
        })
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"], cwd=workdir, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, bufsize=1)
        self.servers = []  # (pid, log file, written in the foreground)
        self.n = 0
        self.send(PRELUDE)
        self.wait_done(TIMEOUT)

    def send(self, script):
        self.proc.stdin.write(script + f"\necho {DONE} $?\n")
        self.proc.stdin.flush()

    def wait_done(self, timeout):
        """The exit status of the last script, or None on timeout / a dead shell."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            line = fd.readline()
            if not line:
                return None
            if line.startswith(DONE):
                return int(line.split()[1])

    def run(self, cmd):
        """Runs one command; returns (exit, statuses, output, elapsed)."""
        self.n += 1
        script = self.tmp / f"cmd{self.n}.sh"
        out = self.tmp / f"out{self.n}"
        status = self.tmp / "status"
        status.write_text("")
        text = substitute(cmd.text, self.port)
        # A `serve` expected to fail (`# → exit 2`) is an ordinary command.
        serve = (SERVE_RE.search(cmd.text.split("\n")[0]) and cmd.exit == 0
                 and not cmd.text.lstrip().startswith("curl"))
        foreground = serve and not re.search(r"&\s*(#.*)?$", cmd.text)
        if foreground:
            # As a reader presses Ctrl-C, the runner stops it at the end of its block.
            text = strip_comment(text) + " &"
        script.write_text(text + "\n")
        started = time.monotonic()
        if serve:
            self.send(f'source {script} > {out} 2>&1\necho "__PID__ $!"')
            pid = None
            while True:
                line = self.proc.stdout.readline()
                if not line or line.startswith(DONE):
                    break
                if line.startswith("__PID__") and line.split()[1:]:
                    pid = int(line.split()[1])
            log = self.server_log_path(cmd.text, out)
            if pid:
                self.servers.append((pid, log, foreground))
            code = 0 if pid and self.wait_healthy(pid) else 1
            return code, [], self.read(out), time.monotonic() - started
        self.send(f"source {script} > {out} 2>&1")
        code = self.wait_done(TIMEOUT)
        elapsed = time.monotonic() - started
        statuses = [int(s) for s in status.read_text().split()]
        return code, statuses, self.read(out), elapsed

    def server_log_path(self, text, out):
        m = re.search(r">\s*(\S+)\s+2>&1\s*&", text)
        return self.workdir / m.group(1) if m else out

    def wait_healthy(self, pid):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    @staticmethod
    def read(path):
        try:
            return path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def server_tail(self, n=8):
        tails = []
        for _, log, _ in self.servers:
            lines = self.read(log).splitlines()
            tails.append(f"    service log ({log.name}, last {n} lines):\n" +
                         "\n".join("      " + l for l in lines[-n:]))
        return "\n".join(tails)

    def alive(self):
        return self.proc.poll() is None

    def stop_servers(self, only_foreground=False):
        """SIGTERM to the services started (only those written in the foreground), then wait."""
        stopping = [e for e in self.servers if e[2] or not only_foreground]
        self.servers = [e for e in self.servers if e not in stopping]
        for pid, _, _ in stopping:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid, _, _ in stopping:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        if stopping:
            # reap them (children of the session's bash)
            self.send(f"wait {' '.join(str(p) for p, _, _ in stopping)} 2>/dev/null; true")
            self.wait_done(TIMEOUT)

    def close(self):
        if self.alive():
            self.stop_servers()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


def strip_comment(text):
    """text without a trailing shell comment on its last line."""
    lines = text.split("\n")
    last = lines[-1]
    for m in re.finditer(r"\s#", last):
        if not _in_quotes(last, m.start()):
            lines[-1] = last[:m.start()]
            break
    return "\n".join(lines).rstrip()


def check(cmd, code, statuses, output):
    """What went wrong, or None."""
    problems = []
    if code is None:
        return f"no result within {TIMEOUT:.0f} s (or the shell exited)"
    if code != cmd.exit:
        problems.append(f"exit {code}")
    if statuses:
        if cmd.status is not None:
            if statuses[-1] != cmd.status:
                problems.append(f"HTTP {statuses[-1]}")
            bad = [s for s in statuses[:-1] if not 200 <= s < 300]
        else:
            bad = [s for s in statuses if not 200 <= s < 300]
        if bad:
            problems.append("HTTP " + ", ".join(map(str, bad)))
    elif cmd.status is not None:
        problems.append("no HTTP answer")
    for c in cmd.contains:
        if c not in output:
            problems.append(f"output lacks {c!r}")
    for a in cmd.absent:
        if a in output:
            problems.append(f"output contains {a!r}")
    return "; ".join(problems) or None


def copy_tree(dest):
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        src = ROOT / f
        if not src.exists():
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / f, follow_symlinks=False)


def run_file(path, pc_bin, results):
    blocks, start = parse(path)
    if start:
        other, anchor = start
        pre, _ = parse(ROOT / other)
        chosen = [b for b in pre if slug(b.heading) == anchor]
        if not chosen:
            sys.exit(f"{path.name}: `start from {other}#{anchor}`: no such section with sh blocks")
        blocks = chosen + blocks
    runnable = [b for b in blocks if not b.skip]
    for b in blocks:
        if b.skip:
            print(f"{b.path.name}:{b.line}: skipped ({b.skip})")
    if not runnable:
        return
    with tempfile.TemporaryDirectory(prefix="doctest-") as tmpdir:
        tmp = Path(tmpdir)
        work, meta, bindir = tmp / "repo", tmp / "meta", tmp / "bin"
        for d in (work, meta, bindir):
            d.mkdir()
        copy_tree(work)
        (bindir / "parent-connection").symlink_to(pc_bin)
        session = Session(work, free_port(), bindir, meta)
        try:
            for block in runnable:
                for cmd in block.commands:
                    where = f"{block.path.name}:{cmd.line} (block at line {block.line})"
                    if not session.alive():
                        results.append((where, cmd, "not run: the shell exited earlier"))
                        report_failure(where, cmd, "not run: the shell exited earlier", "", "")
                        continue
                    code, statuses, output, elapsed = session.run(cmd)
                    problem = check(cmd, code, statuses, output)
                    results.append((where, cmd, problem))
                    if problem:
                        report_failure(where, cmd, problem, output, session.server_tail())
                        if code is None:
                            return
                    else:
                        first = cmd.text.split("\n")[0]
                        print(f"ok   {where}  {first[:90]}  ({elapsed:.1f} s)")
                        if VERBOSE:
                            print("\n".join("      " + l for l in output.splitlines()[-15:]))
                if session.alive():
                    session.stop_servers(only_foreground=True)
        finally:
            session.close()


def report_failure(where, cmd, problem, output, server):
    print(f"FAIL {where}")
    print("    command:  " + cmd.text.replace("\n", "\n              "))
    print(f"    expected: {cmd.expected()}")
    print(f"    got:      {problem}")
    tail = output.splitlines()[-15:]
    if tail:
        print("    output (last 15 lines):\n" + "\n".join("      " + l for l in tail))
    if server:
        print(server)


def main():
    pc_bin = Path(os.environ.get("PC_BIN", ROOT / "target/debug/parent-connection")).resolve()
    if not os.access(pc_bin, os.X_OK):
        sys.exit(f"doctest: {pc_bin} is not an executable; build it (cargo build) or set PC_BIN")
    for tool in ("bash", "curl", "jq", "git"):
        if not shutil.which(tool):
            sys.exit(f"doctest: `{tool}` is needed (apt-get install {tool})")
    files = [Path(a).resolve() for a in sys.argv[1:]] or \
        [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
    results = []
    for f in files:
        run_file(f, pc_bin, results)
    failed = sum(1 for r in results if r[2])
    print(f"doctest: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
