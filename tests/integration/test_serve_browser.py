"""A real browser against `portico serve --writable --list` (issue 4).

Debian's chromium, headless, driven by tests/browser/upload.js through
playwright-core (installed by `make integration` with npm ci from
tests/browser/package-lock.json): it opens a writable listing, puts files
into the listing's upload form, submits it, lands on the listing again,
finds the files listed and downloads them through their links. Here the
files on disk and the downloads are compared byte for byte with what was
uploaded. A browser or playwright-core that is missing fails the test: it
is a dependency (scripts/deps.sh, the Makefile), not an option.
"""
import base64
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from serve_helpers import REPO, start_serve

BROWSER_DIR = REPO / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node") or "/usr/bin/node"


def run_browser(url, files, timeout=150):
    """Runs upload.js in its own process group; kills the group (node and
    the chromium it started) by PID if it outlives the timeout."""
    proc = subprocess.Popen([NODE, str(BROWSER_DIR / "upload.js"), url, *map(str, files)],
                            cwd=BROWSER_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"upload.js did not finish in {timeout} s: {err.decode(errors='replace')}")
    assert proc.returncode == 0, f"upload.js failed: {err.decode(errors='replace')}"
    return json.loads(out)


@pytest.mark.deadline(200)
def test_browser_uploads_through_listing_form(tmp_path):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: scripts/deps.sh installs chromium"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").is_dir(), \
        "playwright-core missing: `make integration` runs npm ci in tests/browser"
    root = tmp_path / "root"
    (root / "inbox").mkdir(parents=True)
    (root / "inbox" / "kept.txt").write_bytes(b"already here\n")
    src = tmp_path / "src"
    src.mkdir()
    blob = os.urandom(700_000) + b"\r\n------WebKitFormBoundary\r\n" + bytes(range(256))
    uploads = {
        "photo.bin": blob,
        # Chrome sends '"' as %22 and a backslash raw: the stored name is the real one
        'say "hi" \\ there.txt': "h\u00e9llo\r\n".encode() * 1000,
    }
    for name, data in uploads.items():
        (src / name).write_bytes(data)
    srv = start_serve(root, tmp_path, "--writable", "--list", tag="browser")
    try:
        got = run_browser(srv.url("/inbox/"), [src / n for n in uploads])
    finally:
        srv.stop()
    # the form's POST answered 303 to the listing, which the browser loaded
    assert got["landed"] == srv.url("/inbox/")
    assert sorted(os.listdir(root / "inbox")) == sorted(["kept.txt", *uploads])
    for name, data in uploads.items():
        assert name in got["listed"], f"{name!r} not in the listing {got['listed']}"
        assert (root / "inbox" / name).read_bytes() == data
        dl = got["files"][name]
        assert dl is not None and dl["status"] == 200, dl
        assert base64.b64decode(dl["b64"]) == data, f"download of {name!r} differs"
    assert "kept.txt" in got["listed"]
