"""The API served by uvicorn on a thread of this process (beside the controller, or in a test)."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn


class ApiServer:
    """``uvicorn`` serving ``app`` on ``host:port`` (0: any free port, read back as :attr:`port`)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.host = host
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="ebbtide-api", daemon=True)

    def start(self, timeout: float = 10.0) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive():
                raise OSError(f"the API server could not listen on {self.host}")
            if time.monotonic() > deadline:
                raise TimeoutError("the API server did not start")
            time.sleep(0.01)
        return self

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
