"""A small notes service that keeps its data in one SQLite file: the DR drill example.

Standard library only. Its data location comes from the environment, which is what lets
``zerodown dr drill`` run it against a restored copy instead of the live file:

    PORT       port to listen on (127.0.0.1)                      required
    NOTES_DB   path of the SQLite database (relative to the cwd)  default data/notes.db

The database must exist: the service never creates an empty one, so a missing or unreadable
file stops it at once instead of serving an empty notebook. ``python3 app.py --init`` creates
it (with the table) and exits.

Routes: ``GET /healthz`` (the database answers), ``GET /notes`` (count and the newest
notes), ``POST /notes`` (the body is the note's text). SIGTERM stops it cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DATABASE = os.environ.get("NOTES_DB") or "data/notes.db"
SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, at REAL, text TEXT NOT NULL)"


@contextlib.contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """One transaction on the existing database (``mode=rw``: never creates a new file)."""
    connection = sqlite3.connect(f"file:{DATABASE}?mode=rw", uri=True, timeout=10)
    try:
        with connection:
            yield connection
    finally:
        connection.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        if self.path != "/healthz":
            sys.stdout.write(f"{self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")
            sys.stdout.flush()

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        try:
            with connect() as db:
                count = db.execute("SELECT count(*) FROM notes").fetchone()[0]
                if self.path == "/healthz":
                    self._send(200, {"ok": True})
                elif self.path == "/notes":
                    rows = db.execute(
                        "SELECT id, at, text FROM notes ORDER BY id DESC LIMIT 20"
                    ).fetchall()
                    notes = [{"id": i, "at": at, "text": text} for i, at, text in rows]
                    self._send(200, {"ok": True, "count": count, "notes": notes})
                else:
                    self._send(404, {"error": "not found"})
        except sqlite3.Error as exc:
            sys.stderr.write(f"ERROR database {DATABASE}: {exc}\n")
            self._send(503, {"ok": False, "error": str(exc)})

    def do_POST(self) -> None:
        if self.path != "/notes":
            self._send(404, {"error": "not found"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        text = self.rfile.read(length).decode("utf-8", "replace").strip()
        if not text:
            self._send(400, {"error": "empty note"})
            return
        try:
            with connect() as db:
                cursor = db.execute(
                    "INSERT INTO notes (at, text) VALUES (?, ?)", (time.time(), text)
                )
                self._send(201, {"ok": True, "id": cursor.lastrowid})
        except sqlite3.Error as exc:
            sys.stderr.write(f"ERROR database {DATABASE}: {exc}\n")
            self._send(503, {"ok": False, "error": str(exc)})


def main() -> int:
    if "--init" in sys.argv[1:]:
        os.makedirs(os.path.dirname(os.path.abspath(DATABASE)), exist_ok=True)
        with sqlite3.connect(DATABASE) as db:
            db.execute(SCHEMA)
        print(f"created {DATABASE}")
        return 0
    try:
        with connect() as db:
            db.execute("SELECT count(*) FROM notes")
    except sqlite3.Error as exc:
        sys.stderr.write(f"cannot open the notes database {DATABASE}: {exc}\n")
        return 1
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"notes serving {DATABASE} on port {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
