"""Lab web server of helper A's samples: answers every GET with the host name (like the seed's nginx).

Run inside a lab namespace: a_webserver.py HOSTNAME [PORT]. Serves until killed; the namespace
cleanup of lib.sh kills it.
"""

import http.server
import sys


class HostnamePage(http.server.BaseHTTPRequestHandler):
    """Replies 200 with the lab host's name, as the seed's index.html = `hostname` does."""

    server_version = "lab-httpd/1.0"
    sys_version = ""
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        body = (sys.argv[1] + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


if __name__ == "__main__":
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 80
    http.server.ThreadingHTTPServer(("0.0.0.0", port), HostnamePage).serve_forever()
