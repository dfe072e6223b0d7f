"""Object ids with the prefixes the OpenAI SDK and its users expect."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``prefix`` + 32 random hex characters, e.g. ``resp_3f1c…``."""
    return prefix + secrets.token_hex(16)


CHAT = "chatcmpl-"
COMPLETION = "cmpl-"
RESPONSE = "resp_"
MESSAGE = "msg_"
FILE = "file-"
BATCH = "batch_"
BATCH_REQUEST = "batch_req_"
REQUEST = "req_"
KEY = "key_"
