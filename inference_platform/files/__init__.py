"""Files: uploads stored in Postgres chunks, and batch output/error files read live.

``upload`` streams a multipart body into ``file_chunks``; ``store`` holds the FileObject,
listing, deletion and content; ``results`` turns a batch's request rows into the JSONL lines of
its output and error files.
"""

from inference_platform.files.store import (
    BATCH_OUTPUT,
    PURPOSES,
    Content,
    content,
    delete,
    file_object,
    get_file,
    list_files,
    retrieve,
)
from inference_platform.files.upload import receive

__all__ = [
    "BATCH_OUTPUT",
    "PURPOSES",
    "Content",
    "content",
    "delete",
    "file_object",
    "get_file",
    "list_files",
    "receive",
    "retrieve",
]
