"""Lab layer-7 listener of the hairpin sample: terminates the client's TCP connection and opens
its own connection to a backend from a proxy address, as a cloud HTTP listener does.

Run inside the load-balancer namespace:
    a_l7proxy.py LISTEN_IP LISTEN_PORT PROXY_SRC_IP BACKEND_IP:PORT [BACKEND_IP:PORT...]
Backends are chosen round-robin per accepted connection. Serves until killed.
"""

import contextlib
import itertools
import socket
import sys
import threading


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy bytes src -> dst until EOF, then half-close dst (keeps HTTP/1.0 close semantics)."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def serve(conn: socket.socket, backend: tuple[str, int], proxy_src: str) -> None:
    """Relay one client connection through a new connection from the proxy address."""
    upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    upstream.settimeout(5)
    try:
        upstream.bind((proxy_src, 0))
        upstream.connect(backend)
    except OSError:
        conn.close()
        upstream.close()
        return
    upstream.settimeout(None)
    back = threading.Thread(target=pipe, args=(upstream, conn), daemon=True)
    back.start()
    pipe(conn, upstream)
    back.join(timeout=10)
    conn.close()
    upstream.close()


def main() -> None:
    listen_ip, listen_port, proxy_src = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    backends = [(b.split(":")[0], int(b.split(":")[1])) for b in sys.argv[4:]]
    rr = itertools.cycle(backends)
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((listen_ip, listen_port))
    lsock.listen(64)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn, next(rr), proxy_src), daemon=True).start()


if __name__ == "__main__":
    main()
