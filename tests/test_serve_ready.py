"""``driftwatch serve`` says "serving on ..." only once its port answers (issue 17): the line
used to come before the stores were opened, and a browser opened on it got a refused
connection for seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import ROOT, free_port


def test_serving_line_comes_when_the_port_answers(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DRIFTWATCH_DATA_DIR": str(tmp_path / "data"),
        "DRIFTWATCH_PORT": str(port),
        "DRIFTWATCH_HOST": "127.0.0.1",
        "COLUMNS": "200",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "serve"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            seen.append(line)
            if "serving on" in line:
                break
            assert time.monotonic() < deadline, "".join(seen)
        assert "serving on" in "".join(seen), "".join(seen)
        assert f"http://127.0.0.1:{port}" in seen[-1]
        # no retry, no wait: the port accepts and the API answers at once
        r = httpx.get(f"http://127.0.0.1:{port}/api/v1/ready", timeout=30)
        assert r.status_code == 200, r.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
