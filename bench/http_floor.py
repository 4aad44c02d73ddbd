"""A do-nothing ASGI app: reads the request body and answers one constant prediction. Served by
the same uvicorn (httptools, uvloop, one worker) as `carnn serve`, it is what the HTTP server
itself allows: the floor the one-row fast path is measured against."""

ANSWER = b'{"predictions":[{"mpg":15.0}]}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
