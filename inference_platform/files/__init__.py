"""Files: uploads stored in Postgres chunks, and batch output/error files read live.

``upload`` stores a streamed upload as ``file_chunks``; ``store`` finds, lists, deletes and
reads files; ``results`` turns a batch's request rows into the JSONL lines of its output and
error files.
"""
