"""FakeWebHDFS: a MOCK of an HDFS namenode+datanode speaking the WebHDFS REST protocol.

No HDFS can run on these machines, so this in-process HTTP server stands in for one, backed by
a temp directory. It lets the real `hdfs` client library talk real HTTP to our HdfsStorage,
which exercises our adapter and the client's protocol handling (two-step CREATE with a
datanode redirect, LISTSTATUS, RENAME, DELETE, RemoteException errors). It does NOT exercise a
real namenode: replication, leases, permissions, Kerberos, HA failover, or real HDFS timing.
HDFS semantics it keeps on purpose: RENAME refuses to overwrite an existing file.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

PREFIX = "/webhdfs/v1"


class FakeWebHDFS:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.requests: list[tuple[str, str]] = []  # (method, op), for assertions
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status: int, body: dict | bytes | None = None, headers: dict | None = None):
                payload = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _error(self, status: int, exception: str, message: str):
                self._reply(
                    status,
                    {
                        "RemoteException": {
                            "exception": exception,
                            "message": message,
                            "javaClassName": f"java.io.{exception}",
                        }
                    },
                )

            def _parse(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                hdfs_path = url.path[len(PREFIX) :] or "/"
                fake.requests.append((self.command, params.get("op", "")))
                return hdfs_path, params, fake.root / hdfs_path.lstrip("/")

            def _status(self, local: Path, suffix: str = "") -> dict:
                return {
                    "pathSuffix": suffix,
                    "type": "DIRECTORY" if local.is_dir() else "FILE",
                    "length": 0 if local.is_dir() else local.stat().st_size,
                    "modificationTime": local.stat().st_mtime_ns // 1_000_000,
                }

            def do_GET(self):
                path, params, local = self._parse()
                op = params.get("op")
                if not local.exists():
                    return self._error(404, "FileNotFoundException", f"File does not exist: {path}")
                if op == "GETFILESTATUS":
                    return self._reply(200, {"FileStatus": self._status(local)})
                if op == "LISTSTATUS":
                    if local.is_file():
                        return self._reply(200, {"FileStatuses": {"FileStatus": [self._status(local)]}})
                    items = [self._status(p, p.name) for p in sorted(local.iterdir())]
                    return self._reply(200, {"FileStatuses": {"FileStatus": items}})
                if op == "OPEN":
                    return self._reply(200, local.read_bytes(), {"Content-Type": "application/octet-stream"})
                return self._error(400, "IllegalArgumentException", f"unsupported op {op}")

            def do_PUT(self):
                path, params, local = self._parse()
                op = params.get("op")
                if op == "MKDIRS":
                    local.mkdir(parents=True, exist_ok=True)
                    return self._reply(200, {"boolean": True})
                if op == "CREATE" and "datanode" not in params:
                    # Namenode step: redirect the client to a "datanode" (ourselves).
                    overwrite = params.get("overwrite", "false")
                    loc = f"http://{self.headers['Host']}{PREFIX}{path}?op=CREATE&datanode=true&overwrite={overwrite}"
                    return self._reply(307, None, {"Location": loc})
                if op == "CREATE":
                    data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    if local.exists() and not _true(params.get("overwrite")):
                        return self._error(403, "FileAlreadyExistsException", f"{path} already exists")
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(data)
                    return self._reply(201, None, {"Location": f"hdfs://fake{path}"})
                if op == "RENAME":
                    dst = fake.root / params["destination"].lstrip("/")
                    ok = local.exists() and not (dst.exists() and dst.is_file()) and dst.parent.is_dir()
                    if ok:
                        local.rename(dst)
                    return self._reply(200, {"boolean": ok})
                return self._error(400, "IllegalArgumentException", f"unsupported op {op}")

            def do_DELETE(self):
                _path, params, local = self._parse()
                if not local.exists():
                    return self._reply(200, {"boolean": False})
                if local.is_dir():
                    if any(local.iterdir()) and not _true(params.get("recursive")):
                        return self._error(403, "PathIsNotEmptyDirectoryException", "not empty")
                    shutil.rmtree(local)
                else:
                    local.unlink()
                return self._reply(200, {"boolean": True})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeWebHDFS:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _true(value: str | None) -> bool:
    """A WebHDFS boolean parameter: "true" in any case, as the namenode's BooleanParam reads it
    (the hdfs client sends Python's "True")."""
    return (value or "").lower() == "true"
