#!/usr/bin/env python3
"""Runs a command and prints its wall time and peak resident memory as JSON:
   scripts/measure.py COMMAND [ARG...]   ->   {"seconds": 1.23, "max_rss_mib": 45.6, "status": 0}
The command's own output goes to /dev/null (its standard error to ours when it fails), or its
standard output to the file MEASURE_STDOUT names when that is set."""
import json
import os
import subprocess
import sys
import time

start = time.monotonic()
out = open(os.environ["MEASURE_STDOUT"], "wb") if os.environ.get("MEASURE_STDOUT") else subprocess.DEVNULL
proc = subprocess.Popen(sys.argv[1:], stdout=out, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.monotonic() - start
err = proc.stderr.read().decode(errors="replace")
if os.waitstatus_to_exitcode(status) != 0:
    sys.stderr.write(err[-2000:])
print(json.dumps({"seconds": round(elapsed, 3), "max_rss_mib": round(usage.ru_maxrss / 1024, 1), "status": os.waitstatus_to_exitcode(status)}))
