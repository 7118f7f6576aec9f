"""FakeOverlord: a MOCK of Apache Druid's Overlord Tasks API (no Druid can run on these machines).

A real HTTP server on loopback that takes ``POST /druid/indexer/v1/task`` and answers
``GET /druid/indexer/v1/task/{id}/status`` as the Overlord documents them: a new task is RUNNING at
its first status poll, then SUCCESS (or FAILED, with an errorMsg, when the test says so). It
refuses a task that is not JSON or has no type or spec (400, as Druid does), and keeps every task
it was given for the test to inspect. What it does not do: ingest, read HDFS, or check the spec
against Druid's own parser.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeOverlord:
    def __init__(self):
        self.tasks: dict[str, dict] = {}
        self.polls: dict[str, int] = {}
        self.fail_with: str | None = None  # the next tasks end FAILED with this message
        self.refuse = False  # answer submissions with 500
        overlord = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                if self.path != "/druid/indexer/v1/task":
                    return self._send(404, {"error": "not found"})
                if overlord.refuse:
                    return self._send(500, {"error": "overlord is not leader"})
                try:
                    task = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                except ValueError:
                    return self._send(400, {"error": "Unexpected character: not JSON"})
                if not isinstance(task, dict) or "type" not in task or "spec" not in task:
                    return self._send(400, {"error": "Missing type id when trying to resolve subtype"})
                task_id = f"{task['type']}_{task['spec']['dataSchema']['dataSource']}_{uuid.uuid4().hex[:8]}"
                overlord.tasks[task_id] = {"task": task, "fail": overlord.fail_with}
                return self._send(200, {"task": task_id})

            def do_GET(self):
                parts = self.path.strip("/").split("/")
                if parts[:4] != ["druid", "indexer", "v1", "task"] or len(parts) != 6 or parts[5] != "status":
                    return self._send(404, {"error": "not found"})
                task_id = parts[4]
                if task_id not in overlord.tasks:
                    return self._send(404, {"task": task_id, "status": None})
                overlord.polls[task_id] = overlord.polls.get(task_id, 0) + 1
                fail = overlord.tasks[task_id]["fail"]
                state = "RUNNING" if overlord.polls[task_id] == 1 else "FAILED" if fail else "SUCCESS"
                status = {"id": task_id, "status": state, "statusCode": state, "duration": 1}
                if state == "FAILED":
                    status["errorMsg"] = fail
                return self._send(200, {"task": task_id, "status": status})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeOverlord:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
