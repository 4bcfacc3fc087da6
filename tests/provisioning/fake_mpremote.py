"""A stand-in for ``mpremote`` with a folder as the board's flash (FAKE_BOARD). It understands what provisioning
runs: ``connect PORT``, ``exec CODE``, ``fs cp FILE... :DEST/``, ``fs sha256sum :PATH...``, chained with ``+``.
FAKE_BOARD_GARBLE=<name> makes the copy of that file come out wrong (a bad flash write); FAKE_BOARD_ABSENT=1
behaves like a port with no board."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    board = Path(os.environ["FAKE_BOARD"])
    if argv[:1] != ["connect"] or os.environ.get("FAKE_BOARD_ABSENT"):
        print(f"mpremote: failed to access {argv[1] if len(argv) > 1 else '?'}", file=sys.stderr)
        return 1
    words = argv[2:]
    with open(board.parent / "mpremote.log", "a") as log:
        log.write(" ".join(argv) + "\n")
    while words:
        cmd = words[:words.index("+")] if "+" in words else words
        words = words[len(cmd) + 1:]
        if cmd[0] == "exec":
            (board / "smileloop").mkdir(parents=True, exist_ok=True)
        elif cmd[:2] == ["fs", "cp"]:
            dest = board / cmd[-1].lstrip(":").strip("/")
            for src in cmd[2:-1]:
                data = Path(src).read_bytes()
                if os.environ.get("FAKE_BOARD_GARBLE") == Path(src).name:
                    data = data[:-1] + b"?"
                (dest / Path(src).name).write_bytes(data)
        elif cmd[:2] == ["fs", "sha256sum"]:
            for path in cmd[2:]:
                print(f"sha256sum {path}")
                print(hashlib.sha256((board / path.lstrip(":/")).read_bytes()).hexdigest())
        else:
            print(f"fake mpremote: unknown command {cmd}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
