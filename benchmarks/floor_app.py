"""The server benchmark's floor: an ASGI app that does no feature work, under the same uvicorn.

For `POST /get-online-features` it reads and parses the JSON body (as any server must) and answers
with the fixed bytes of a real answer of the server under test for that many entity rows (files
`answer_<rows>.json` in the directory FLOOR_ANSWERS_DIR); `GET /ready` answers 200. Its latency
and requests/s are what the HTTP server, the client and the machine cost by themselves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

ANSWERS = {
    int(p.stem.split("_")[1]): p.read_bytes() for p in Path(os.environ["FLOOR_ANSWERS_DIR"]).glob("answer_*.json")
}
READY = b'{"status": "ready"}'


def _answer(body: bytes) -> bytes:
    entities = orjson.loads(body).get("entities") or {}
    rows = len(next(iter(entities.values()), []))
    return ANSWERS.get(rows) or ANSWERS[min(ANSWERS, key=lambda n: abs(n - rows))]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = _answer(b"".join(chunks)) if scope["path"] == "/get-online-features" else READY
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
