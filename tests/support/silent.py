"""A TCP listener that accepts connections and never says a word: an OBProxy that hangs."""

from __future__ import annotations

import socketserver
import threading


class Silent(socketserver.ThreadingTCPServer):
    """Accepts connections and never answers; counts how many are open at once (`most`)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = self.most = 0
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                with outer.lock:
                    outer.open += 1
                    outer.most = max(outer.most, outer.open)
                try:
                    while self.request.recv(1024):
                        pass
                except OSError:
                    pass
                finally:
                    with outer.lock:
                        outer.open -= 1

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = int(self.server_address[1])
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
