"""Runs one command and writes its own peak RSS and CPU time to a JSON file.

Linux reports, as a child's peak RSS, at least the RSS its parent had when it forked (the
high-water mark survives fork and exec). The harness holds whole result tables in memory, so its
children would all inherit that floor. This small process is forked from the harness, execs a
fresh interpreter, then forks the real command from there: the command's peak is its own.

    python _measure.py OUT.json -- COMMAND ARGS...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def main() -> int:
    out, sep, *command = sys.argv[1:]
    if sep != "--" or not command:
        raise SystemExit("usage: _measure.py OUT.json -- COMMAND ARGS...")
    proc = subprocess.Popen(command)
    _, status, usage = os.wait4(proc.pid, 0)
    with open(out, "w") as f:
        json.dump({"maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, f)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
