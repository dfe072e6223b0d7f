"""``inference-platform batch submit``: upload a JSONL file, run it as a batch, fetch results.

A client of the public API (through the ``openai`` SDK), so it works against any deployment
of the platform, or any OpenAI-compatible server, given ``--base-url`` and ``--api-key``.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

BATCH_FINAL_STATUSES = ("completed", "failed", "expired", "cancelled")


def _client(base_url: str, api_key: str) -> Any:
    try:
        import openai
    except ImportError:  # the SDK is a client-side dependency, not a server one
        raise click.ClickException("`batch` needs the openai package: pip install openai") from None
    return openai.OpenAI(base_url=base_url, api_key=api_key, timeout=600)


def _metadata(pairs: tuple[str, ...]) -> dict[str, str] | None:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--metadata")
        out[key] = value
    return out or None


def _api_errors(command: Callable[..., None]) -> Callable[..., None]:
    """The server's refusal (or no server) as a one-line error, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        import openai

        try:
            command(*args, **kwargs)
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            raise click.ClickException(
                f"{exc.status_code}: {body.get('message') or exc.message}"
            ) from None
        except openai.APIConnectionError as exc:
            raise click.ClickException(f"cannot reach the API: {exc}") from None

    return run


@click.group()
def batch() -> None:
    """Batch jobs: submit a JSONL file of requests and collect the results."""


@batch.command()
@_api_errors
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--endpoint",
    default="/v1/chat/completions",
    show_default=True,
    help="The endpoint every line calls (each line's `url`).",
)
@click.option(
    "--window",
    default="24h",
    show_default=True,
    help="Completion window: 24h, or 1h to be served first.",
)
@click.option(
    "--wait/--no-wait",
    default=False,
    help="Follow the batch with a progress bar and download its results.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where results go (default: next to FILE).",
)
@click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="Batch metadata.")
@click.option("--poll", default=2.0, show_default=True, help="Seconds between status checks.")
@click.option(
    "--base-url",
    envvar="OPENAI_BASE_URL",
    default="http://127.0.0.1:8000/v1",
    show_default=True,
    help="API base URL (env OPENAI_BASE_URL).",
)
@click.option(
    "--api-key", envvar="OPENAI_API_KEY", default="EMPTY", help="API key (env OPENAI_API_KEY)."
)
def submit(
    file: Path,
    endpoint: str,
    window: str,
    wait: bool,
    out_dir: Path | None,
    metadata: tuple[str, ...],
    poll: float,
    base_url: str,
    api_key: str,
) -> None:
    """Upload FILE (JSONL), create a batch, and with --wait download output and errors."""
    client = _client(base_url, api_key)
    with file.open("rb") as fh:
        uploaded = client.files.create(file=(file.name, fh), purpose="batch")
    click.echo(f"uploaded {file.name} as {uploaded.id} ({uploaded.bytes} bytes)")
    created = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=endpoint,
        completion_window=window,
        metadata=_metadata(metadata),
    )
    click.echo(f"batch {created.id}: {created.status} (window {window}){_eta(created)}")
    if not wait:
        return
    _finish(client, created.id, poll, out_dir or file.parent, file.stem)


def _finish(client: Any, batch_id: str, poll: float, target: Path, stem: str) -> None:
    """Follow a batch to its end and download its output and errors."""
    final = _follow(client, batch_id, poll)
    click.echo(
        f"batch {final.id}: {final.status} — {final.request_counts.completed} succeeded, "
        f"{final.request_counts.failed} failed of {final.request_counts.total}"
    )
    if final.status == "failed" and final.errors:
        for error in final.errors.data or []:
            where = f"line {error.line}: " if error.line else ""
            click.echo(f"  {where}{error.code}: {error.message}", err=True)
    target.mkdir(parents=True, exist_ok=True)
    for kind, file_id in (("output", final.output_file_id), ("errors", final.error_file_id)):
        if file_id:
            path = target / f"{stem}.{kind}.jsonl"
            with client.files.with_streaming_response.content(file_id) as response:
                response.stream_to_file(path)
            click.echo(f"{kind}: {path}")
    if final.status != "completed":
        sys.exit(1)


def _follow(client: Any, batch_id: str, poll: float) -> Any:
    """Poll until terminal, drawing a progress bar from ``request_counts``."""
    current = client.batches.retrieve(batch_id)
    while current.status == "validating":
        time.sleep(poll)
        current = client.batches.retrieve(batch_id)
    if current.status in BATCH_FINAL_STATUSES:
        return current
    counts = current.request_counts
    with click.progressbar(
        length=max(1, counts.total), label=f"{current.status}{_eta(current)}", show_pos=True
    ) as bar:
        shown = 0
        while True:
            counts = current.request_counts
            done = counts.completed + counts.failed
            bar.update(done - shown)
            shown = done
            bar.label = f"{current.status}{_eta(current)}"
            if current.status in BATCH_FINAL_STATUSES:
                return current
            time.sleep(poll)
            current = client.batches.retrieve(batch_id)


def _eta(batch: Any) -> str:
    """``, done by 14:05 UTC (in 12 min)`` from the platform's ``estimated_completion_at``
    (an extension: servers without it show nothing)."""
    eta = getattr(batch, "estimated_completion_at", None)
    if not isinstance(eta, int | float) or batch.status in BATCH_FINAL_STATUSES:
        return ""
    left = max(0.0, eta - time.time())
    when = time.strftime("%H:%M", time.gmtime(eta))
    if left < 90:
        rest = f"{round(left)} s"
    elif left < 5400:
        rest = f"{round(left / 60)} min"
    else:
        rest = f"{left / 3600:.1f} h"
    return f", done by {when} UTC (in {rest})"


_CONNECTION = [
    click.option(
        "--base-url",
        envvar="OPENAI_BASE_URL",
        default="http://127.0.0.1:8000/v1",
        show_default=True,
        help="API base URL (env OPENAI_BASE_URL).",
    ),
    click.option(
        "--api-key", envvar="OPENAI_API_KEY", default="EMPTY", help="API key (env OPENAI_API_KEY)."
    ),
]


def _connection(command: Any) -> Any:
    for option in reversed(_CONNECTION):
        command = option(command)
    return command


@batch.command()
@_api_errors
@click.argument("batch_id")
@_connection
def status(batch_id: str, base_url: str, api_key: str) -> None:
    """Show a batch's status, progress and estimated completion."""
    current = _client(base_url, api_key).batches.retrieve(batch_id)
    counts = current.request_counts
    progress = f"{counts.completed + counts.failed}/{counts.total} lines done" if counts else ""
    failed = f", {counts.failed} failed" if counts and counts.failed else ""
    click.echo(f"batch {current.id}: {current.status}, {progress}{failed}{_eta(current)}")


@batch.command()
@_api_errors
@click.argument("batch_id")
@click.option("--window", default=None, help="Completion window (default: the original's).")
@click.option("--wait/--no-wait", default=False, help="Follow the new batch and download it.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where results go with --wait.",
)
@click.option("--poll", default=2.0, show_default=True, help="Seconds between status checks.")
@_connection
def retry(
    batch_id: str,
    window: str | None,
    wait: bool,
    out_dir: Path,
    poll: float,
    base_url: str,
    api_key: str,
) -> None:
    """Run BATCH_ID's failed, expired and cancelled lines again, as a new batch."""
    client = _client(base_url, api_key)
    from openai.types import Batch

    body = {"completion_window": window} if window else {}
    created = client.post(f"/batches/{batch_id}/retry", body=body, cast_to=Batch)
    click.echo(f"batch {created.id}: {created.status}, retrying {batch_id}{_eta(created)}")
    if wait:
        _finish(client, created.id, poll, out_dir, created.id)


def register(group: click.Group) -> None:
    from cli.batch_estimate import estimate

    batch.add_command(estimate)
    group.add_command(batch)
