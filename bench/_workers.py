"""The platform behind one port with N uvicorn workers (`python -m bench._workers PORT N`).

`wecity serve` runs one worker; uvicorn can run several on one shared socket when it is given the app
factory by name. Logging is set up as `wecity serve` does, so each worker pays the same per-request costs.
"""

from __future__ import annotations

import sys

import uvicorn

from wecity.core.logs import configure_logging


def main(argv: list[str]) -> None:
    port, workers = int(argv[0]), int(argv[1])
    configure_logging()
    uvicorn.run("wecity.api.app:create_app", factory=True, host="127.0.0.1", port=port, workers=workers,
                log_config=None, access_log=False, loop="auto", http="auto")


if __name__ == "__main__":
    main(sys.argv[1:])
