"""A local stand-in for the Hugging Face Hub: the subset of its HTTP API that `create_repo` + `upload_folder` use.

The tests start it on 127.0.0.1 (an ephemeral port), point `HF_ENDPOINT` / `HfApi(endpoint=...)` at it and then
inspect what arrived. It is written from the client side of `huggingface_hub` 2.x (read from the installed source):

=========================================================  ====================================================
request                                                    used by
=========================================================  ====================================================
``POST /api/repos/create``                                 ``create_repo`` (409 when it exists; ``exist_ok``)
``POST /api/{type}s/{ns}/{name}/branch/{branch}``          ``create_branch`` (push with ``revision=``)
``POST /api/validate-yaml``                                ``create_commit`` when the commit carries README.md
``POST /api/{type}s/{ns}/{name}/preupload/{rev}``          upload mode per file: ``regular`` or ``lfs``
``POST /{ns}/{name}.git/info/lfs/objects/batch``           LFS batch API: one upload (+ verify) action per object
``PUT /_lfs/{oid}``                                        the LFS "basic" transfer: the raw file body
``POST /_lfs/{oid}/verify``                                LFS verify: size + sha256 checked again
``POST /api/{type}s/{ns}/{name}/commit/{rev}``             the ndjson commit (header, file, lfsFile, deletedFile)
``GET /api/{type}s/{ns}/{name}[/revision/{rev}]``          ``repo_info`` (no-op commit, ``snapshot_download``)
``GET /api/{type}s/{ns}/{name}/tree/{rev}``                 ``list_repo_tree`` (``snapshot_download``)
``GET|HEAD /{ns}/{name}/resolve/{rev}/{path}``             ``hf_hub_download`` (plain HTTP, no xet headers)
=========================================================  ====================================================

Xet is not spoken: with `hf_xet` installed, `upload_folder` takes its xet pipeline unless
``HF_HUB_DISABLE_XET=1`` is set before `huggingface_hub` is imported (or `huggingface_hub.constants.HF_HUB_DISABLE_XET`
is patched to True), which routes large files through the LFS path above. The server refuses nothing it does not
understand silently: any other request gets a 404 naming the route, and every request is logged in `FakeHub.log`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

# Files at least this large, or with a binary suffix, are LFS on the real Hub (it decides by .gitattributes + size);
# the test folders have both kinds, so both upload paths run.
LFS_MIN_BYTES = 10_000
LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub reports as the oid of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class FakeRepo:
    """One repository: its visibility and, per branch, the committed files and commit ids."""

    repo_id: str
    repo_type: str
    private: bool
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    commits: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"main": []})
    snapshots: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit oid -> files at that commit


class FakeHub:
    """An in-memory Hub on 127.0.0.1. Use as a context manager; `url` is the endpoint to give `huggingface_hub`.

    Args:
        token: When set, every API call must carry ``Authorization: Bearer <token>`` (401 otherwise), so a test sees
            that the token was passed through.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token
        self.repos: dict[str, FakeRepo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 hex -> content
        self.log: list[tuple[str, str]] = []  # (method, path) of every request, in arrival order
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeHub is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        handler = type("BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fakehub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection helpers for tests -------------------------------------------------------------------------------

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> dict[str, bytes]:
        """The committed files of a repo at a branch: path -> bytes (LFS pointers resolved)."""
        return dict(self.repos[f"{repo_type}/{repo_id}"].branches[revision])

    def uploads(self) -> list[tuple[str, str]]:
        """Requests that move data towards the Hub (LFS bodies and commits): empty means nothing was sent."""
        return [(m, p) for m, p in self.log if m == "PUT" or "/commit/" in p or p.endswith("/verify")]


class _HubError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


_REPO = r"(?P<type>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/api/repos/create"), "create_repo"),
    ("POST", re.compile(r"/api/validate-yaml"), "validate_yaml"),
    ("POST", re.compile(rf"/api/{_REPO}/branch/(?P<rev>.+)"), "create_branch"),
    ("POST", re.compile(rf"/api/{_REPO}/preupload/(?P<rev>.+)"), "preupload"),
    ("POST", re.compile(rf"/api/{_REPO}/commit/(?P<rev>.+)"), "commit"),
    ("GET", re.compile(rf"/api/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?"), "tree"),
    ("GET", re.compile(rf"/api/{_REPO}(?:/revision/(?P<rev>.+))?"), "repo_info"),
    ("POST", re.compile(r"/(?:(?P<type>dataset|space)s/)?(?P<repo>[^/]+/[^/]+)\.git/info/lfs/objects/batch"),
     "lfs_batch"),
    ("PUT", re.compile(r"/_lfs/(?P<oid>[0-9a-f]{64})"), "lfs_put"),
    ("POST", re.compile(r"/_lfs/(?P<oid>[0-9a-f]{64})/verify"), "lfs_verify"),
    ("GET", re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
    ("HEAD", re.compile(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)"), "resolve"),
]


class _Handler(BaseHTTPRequestHandler):
    """Routes one request to a `_do_*` method; errors become JSON ``{"error": ...}`` with the Hub's status codes."""

    hub: FakeHub
    protocol_version = "HTTP/1.1"  # httpx keeps connections alive; every reply carries Content-Length

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep pytest output quiet
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        query = urlsplit(self.path).query
        body = self._read_body()
        with self.hub._lock:
            self.hub.log.append((method, path))
        try:
            for route_method, pattern, name in _ROUTES:
                match = pattern.fullmatch(path)
                if route_method == method and match:
                    if name not in ("lfs_put", "lfs_verify", "resolve"):
                        self._check_auth()
                    with self.hub._lock:
                        status, payload, headers = getattr(self, f"_do_{name}")(match.groupdict(), body, query)
                    break
            else:
                raise _HubError(404, f"fakehub: no route for {method} {path}")
        except _HubError as e:
            status, payload, headers = e.status, {"error": str(e)}, {}
        self._reply(status, payload, headers, head_only=method == "HEAD")

    def _read_body(self) -> bytes:
        # httpx streams file uploads with chunked transfer encoding when it cannot know the length up front.
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, payload: Any, headers: dict[str, str], head_only: bool) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        binary = isinstance(payload, bytes)
        self.send_header("Content-Type", "application/octet-stream" if binary else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _check_auth(self) -> None:
        if self.hub.token is not None and self.headers.get("Authorization") != f"Bearer {self.hub.token}":
            raise _HubError(401, "Invalid credentials in Authorization header")

    def _repo(self, groups: dict[str, str | None]) -> FakeRepo:
        key = f"{groups.get('type') or 'model'}/{groups['repo']}"
        if key not in self.hub.repos:
            raise _HubError(404, f"Repository not found: {groups['repo']}")
        return self.hub.repos[key]

    @staticmethod
    def _branch(repo: FakeRepo, rev: str | None) -> str:
        rev = unquote(rev or "main")
        if rev not in repo.branches:
            raise _HubError(404, f"Invalid rev id: {rev}")
        return rev

    @staticmethod
    def _tree(repo: FakeRepo, rev: str | None) -> tuple[str, dict[str, bytes]]:
        """(commit oid, files) at a branch name or a commit oid."""
        rev = unquote(rev or "main")
        if rev in repo.branches:
            commits = repo.commits[rev]
            return (commits[-1]["oid"] if commits else "0" * 40), repo.branches[rev]
        if rev in repo.snapshots:
            return rev, repo.snapshots[rev]
        raise _HubError(404, f"Invalid rev id: {rev}")

    @staticmethod
    def _json(body: bytes) -> Any:
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as e:
            raise _HubError(400, f"body is not JSON: {e}") from e

    # -- routes -----------------------------------------------------------------------------------------------------

    def _do_create_repo(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        payload = self._json(body)
        repo_type = payload.get("type") or "model"
        name, org = payload.get("name"), payload.get("organization")
        if not name or not org:
            raise _HubError(400, "name and organization are required")
        repo_id = f"{org}/{name}"
        key = f"{repo_type}/{repo_id}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.hub.url}/{prefix}{repo_id}"
        if key in self.hub.repos:
            return 409, {"error": "You already created this model repo", "url": url}, {}
        self.hub.repos[key] = FakeRepo(repo_id, repo_type, private=payload.get("visibility") == "private")
        return 200, {"url": url, "name": repo_id}, {}

    def _do_create_branch(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        branch = unquote(groups["rev"])
        if branch in repo.branches:
            raise _HubError(409, f"Reference already exists: {branch}")
        start = self._json(body).get("startingPoint") or "main"
        repo.branches[branch] = dict(repo.branches[self._branch(repo, start)])
        repo.commits[branch] = list(repo.commits[start])
        return 200, {}, {}

    def _do_validate_yaml(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        content = self._json(body).get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, flags=re.S)
        if match is None:
            return 200, {"errors": [], "warnings": [{"message": "empty or missing yaml metadata"}]}, {}
        try:
            meta = yaml.safe_load(match.group(1))
        except yaml.YAMLError as e:
            return 400, {"errors": [{"message": f"invalid YAML: {e}"}], "warnings": []}, {}
        if not isinstance(meta, dict):
            return 400, {"errors": [{"message": "metadata must be a mapping"}], "warnings": []}, {}
        return 200, {"errors": [], "warnings": []}, {}

    def _do_preupload(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        current = repo.branches[self._branch(repo, groups["rev"])]
        answers = []
        for item in self._json(body).get("files", []):
            path, size = item["path"], int(item["size"])
            lfs = size >= LFS_MIN_BYTES or path.endswith(LFS_SUFFIXES)
            oid = None
            if path in current:  # the client skips files whose oid did not change
                data = current[path]
                oid = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
            answers.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        return 200, {"files": answers, "commitOid": "0" * 40}, {}

    def _do_lfs_batch(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        self._repo(groups)
        payload = self._json(body)
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise _HubError(400, "only the basic upload transfer is supported")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size}
            if oid not in self.hub.lfs:  # no "actions" means the server already has it
                entry["actions"] = {
                    "upload": {"href": f"{self.hub.url}/_lfs/{oid}"},
                    "verify": {"href": f"{self.hub.url}/_lfs/{oid}/verify"},
                }
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, {}

    def _do_lfs_put(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        oid = groups["oid"]
        if hashlib.sha256(body).hexdigest() != oid:
            raise _HubError(400, f"LFS body does not hash to {oid}")
        self.hub.lfs[oid] = body
        return 200, {}, {}

    def _do_lfs_verify(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        payload = self._json(body)
        data = self.hub.lfs.get(groups["oid"])
        if data is None or len(data) != int(payload.get("size", -1)):
            raise _HubError(404, f"LFS object {groups['oid']} is missing or has the wrong size")
        return 200, {}, {}

    def _do_commit(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        branch = self._branch(repo, groups["rev"])
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        # Build the new tree aside and swap it in at the end: a bad line leaves the branch untouched.
        files = dict(repo.branches[branch])
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _HubError(400, f"unsupported encoding for {value['path']}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "lfsFile":
                data = self.hub.lfs.get(value["oid"])
                if data is None:
                    raise _HubError(400, f"LFS object {value['oid']} for {value['path']} was never uploaded")
                if "size" in value and int(value["size"]) != len(data):
                    raise _HubError(400, f"size mismatch for {value['path']}")
                files[value["path"]] = data
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise _HubError(404, f"A file with this name doesn't exist: {value['path']}")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {p: d for p, d in files.items() if not p.startswith(prefix)}
            else:
                raise _HubError(400, f"unsupported commit operation {key!r}")
        oid = hashlib.sha1(json.dumps([header, sorted(files), len(repo.commits[branch])]).encode()).hexdigest()
        repo.branches[branch] = files
        repo.snapshots[oid] = files
        repo.commits[branch].append({"oid": oid, "summary": header.get("summary", "")})
        prefix = "" if repo.repo_type == "model" else f"{repo.repo_type}s/"
        commit_url = f"{self.hub.url}/{prefix}{repo.repo_id}/commit/{oid}"
        return 200, {"commitUrl": commit_url, "commitOid": oid, "pullRequestUrl": None}, {}

    def _do_repo_info(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        sha, files = self._tree(repo, groups.get("rev"))
        siblings = [{"rfilename": p} for p in sorted(files)]
        return 200, {"id": repo.repo_id, "private": repo.private, "sha": sha, "siblings": siblings}, {}

    def _do_tree(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        _, files = self._tree(repo, groups["rev"])
        prefix = (groups.get("path") or "").strip("/")
        # Flat listing of files (recursive=true is all snapshot_download asks for); one page, no Link header.
        entries = [{"type": "file", "path": p, "size": len(d), "oid": git_blob_sha1(d)}
                   for p, d in sorted(files.items()) if not prefix or p.startswith(prefix + "/")]
        return 200, entries, {}

    def _do_resolve(self, groups: dict, body: bytes, query: str) -> tuple[int, Any, dict]:
        repo = self._repo(groups)
        commit, files = self._tree(repo, groups["rev"])
        if groups["path"] not in files:
            return 404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"}
        data = files[groups["path"]]
        headers = {"ETag": f'"{hashlib.sha256(data).hexdigest()}"', "X-Repo-Commit": commit}
        return 200, data, headers
