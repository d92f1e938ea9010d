"""The anchor for the webhook benchmark: a FastAPI endpoint that only answers 202, served
by uvicorn the way `qwenfix serve` serves the receiver (one worker, httptools, uvloop)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

app = FastAPI()


@app.post("/webhook")
async def webhook(request: Request) -> Response:
    await request.body()
    return JSONResponse({"status": "queued"}, status_code=202)
