"""Writes src/agentbus_client/_sync/ from src/agentbus_client/_async/ (unasync, token by token).

The async client is the one written by hand; the sync client is this script's output and
is committed, so it can be read and type-checked. tests/test_generated.py fails when the
two drift. `_io.py` is written by hand on both sides (sleeping is not awaiting).

    python scripts/generate_sync.py [OUTPUT_DIR]
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import unasync

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "agentbus_client"
HAND_WRITTEN = {"_io.py", "__init__.py"}
REPLACEMENTS = {
    "_async": "_sync",
    "AsyncClient": "Client",
    "AsyncBaseTransport": "BaseTransport",
    "AsyncEventStream": "EventStream",
    "AsyncChunkStream": "ChunkStream",
    "AsyncStreamWriter": "StreamWriter",
    "AsyncWebSocketSession": "WebSocketSession",
    "aconnect_ws": "connect_ws",
    "aclose": "close",
    "aread": "read",
    "aiter_bytes": "iter_bytes",
}


def generate(into: Path) -> list[Path]:
    """Write the sync modules into `into`; the files written."""
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "_async"
        shutil.copytree(PACKAGE / "_async", source, ignore=shutil.ignore_patterns("__pycache__"))
        files = sorted(str(p) for p in source.glob("*.py") if p.name not in HAND_WRITTEN)
        unasync.unasync_files(
            files, [unasync.Rule("/_async/", "/_sync/", additional_replacements=REPLACEMENTS)]
        )
        written = []
        for made in sorted((Path(scratch) / "_sync").glob("*.py")):
            text = made.read_text()
            header = (
                "# Generated from _async/ by scripts/generate_sync.py: edit the async file, then run it.\n"
            )
            target = into / made.name
            target.write_text(header + text)
            written.append(target)
    files = [str(p) for p in written]  # the same import order and layout as the committed files
    ruff = [sys.executable, "-m", "ruff"]
    subprocess.run([*ruff, "check", "-q", "--fix", "--select", "I", *files], check=False)
    subprocess.run([*ruff, "format", "-q", *files], check=False)
    return written


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else PACKAGE / "_sync"
    for path in generate(out):
        print(path)
