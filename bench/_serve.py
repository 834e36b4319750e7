"""Serve a ceiling app with uvicorn exactly as `wecity serve` serves the platform (`python -m bench._serve APP PORT`)."""

from __future__ import annotations

import sys

import uvicorn


def main(argv: list[str]) -> None:
    app, port = argv[0], int(argv[1])
    # The same settings as wecity.cli._serve: one process, uvloop and httptools when installed, no access log.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False, loop="auto", http="auto",
                factory="--factory" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
