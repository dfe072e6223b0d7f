"""SQLAlchemy models: the source of truth for every object a client was given an id for."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class ApiKey(Base):
    """An API key; only its SHA-256 is stored. ``tenant`` owns every object made with it."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    # First characters of the key, for listing ("sk-ab12…"); never enough to use it.
    hint: Mapped[str] = mapped_column(String(16), nullable=False)
    # ``admin`` keys may also read usage and costs and manage webhook endpoints.
    role: Mapped[str] = mapped_column(
        String(16), nullable=False, default="member", server_default="member"
    )
    created_at: Mapped[datetime] = _now()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Request(Base):
    """One piece of inference work, any tier: a background/flex response, a batch line, or a
    realtime request recorded after the fact.

    Status moves queued -> in_progress -> completed | incomplete | failed | cancelled | expired.
    Completion is a conditional update on (status, attempt) so a redelivered task never
    writes twice.
    """

    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    # The API key the request was made with (usage reports group by it).
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    tier: Mapped[str] = mapped_column(String(16), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(40), nullable=False)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="queued")
    body: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # What the endpoint returns: a Response object, a chat completion, ...
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # HTTP status the request ended with (batch lines report it per line).
    status_code: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempt: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a Celery message for this work was last published (the sweeper re-publishes).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    background: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    stream: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    store: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    previous_response_id: Mapped[str | None] = mapped_column(String(64))
    batch_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("batches.id", ondelete="CASCADE")
    )
    custom_id: Mapped[str | None] = mapped_column(String(64))
    line_no: Mapped[int | None] = mapped_column(Integer)
    # A batch line's output token limit (null: the model's default); a batch's lines are
    # claimed longest first (see ``jobs.store``).
    output_limit: Mapped[int | None] = mapped_column(Integer)
    # A batch line's prompt prefix (``batches.prefix``): a batch's lines that share one are
    # claimed together, so they run while the engine still holds the prefix in its cache.
    prefix_hash: Mapped[int | None] = mapped_column(BigInteger)
    chunk_no: Mapped[int | None] = mapped_column(Integer)
    # Order in which results were produced (Postgres sequence request_result_seq); output
    # files list lines in this order.
    result_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _now()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_requests_owner_created", "owner", "created_at"),
        Index("ix_requests_status_tier", "status", "tier"),
        Index("ix_requests_batch_chunk", "batch_id", "chunk_no"),
        Index("ix_requests_batch_result", "batch_id", "result_seq"),
        Index("ix_requests_batch_status", "batch_id", "status"),
        # Flex jobs by when they ended: the SLA figures read the recent ones.
        Index(
            "ix_requests_flex_finished",
            "finished_at",
            postgresql_where=text("tier = 'flex' AND batch_id IS NULL"),
        ),
        # Batch workers claim queued lines of their model, earliest deadline first, and
        # within a batch by prompt prefix, each group the longest first.
        Index(
            "ix_requests_batch_queue",
            "model",
            "deadline",
            "batch_id",
            "prefix_hash",
            text("output_limit DESC NULLS FIRST"),
            "line_no",
            postgresql_where=text("status = 'queued' AND tier = 'batch'"),
        ),
    )


class UsageRecord(Base):
    """Tokens billed for one request, written once (unique request_id) with its tier."""

    __tablename__ = "usage_records"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    tier: Mapped[str] = mapped_column(String(16), nullable=False)
    endpoint: Mapped[str] = mapped_column(String(40), nullable=False)
    batch_id: Mapped[str | None] = mapped_column(String(64), index=True)
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Of ``input_tokens``, those the engine's prefix cache served (priced apart).
    cached_tokens: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )
    created_at: Mapped[datetime] = _now()


class File(Base):
    """An uploaded file (content in ``file_chunks``) or a batch's output/error file, whose
    lines are read live from the batch's request rows."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    filename: Mapped[str] = mapped_column(String(512), nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), nullable=False)
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="processed")
    # "upload" | "output" | "error"
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="upload")
    batch_id: Mapped[str | None] = mapped_column(String(64))
    line_count: Mapped[int | None] = mapped_column(Integer)
    # What an upload asks of the engine, counted while it was uploaded (``files.stats``):
    # admission decides on it at batch creation without reading the file again.
    stats: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_files_owner_created", "owner", "created_at"),)


class FileChunk(Base):
    """Raw bytes of an uploaded file in order; every API host reads the same rows."""

    __tablename__ = "file_chunks"

    file_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class Batch(Base):
    __tablename__ = "batches"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    api_key_id: Mapped[str | None] = mapped_column(String(40))
    endpoint: Mapped[str] = mapped_column(String(40), nullable=False)
    input_file_id: Mapped[str] = mapped_column(String(64), nullable=False)
    completion_window: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="validating")
    model: Mapped[str | None] = mapped_column(String(200))
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    errors: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    output_file_id: Mapped[str | None] = mapped_column(String(64))
    error_file_id: Mapped[str | None] = mapped_column(String(64))
    total: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    in_progress_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finalizing_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    failed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelling_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Validation lease (the control worker renews it) and when validation was last enqueued;
    # the sweeper re-enqueues a validation whose worker died or whose message was lost.
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # `output_expires_after.seconds`: lifetime of the output and error files.
    output_expires_seconds: Mapped[int | None] = mapped_column(Integer)
    # Frozen at the terminal state; while running they are computed from the request rows.
    request_counts: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The work the batch was admitted with (``capacity.work``), and when the capacity model
    # expects it to finish (refreshed by the control role while it runs).
    demand: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    estimated_completion_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_batches_owner_created", "owner", "created_at"),
        Index("ix_batches_status", "status"),
    )


class TenantLimit(Base):
    """A tenant's limits, for one model or for all (``model = '*'``); a null inherits the
    tenant's ``*`` row, then the settings' default. 0 means no limit."""

    __tablename__ = "tenant_limits"

    tenant: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True, default="*")
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    tokens_per_minute: Mapped[int | None] = mapped_column(BigInteger)
    concurrent_requests: Mapped[int | None] = mapped_column(Integer)
    queued_flex_requests: Mapped[int | None] = mapped_column(Integer)
    enqueued_batch_lines: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = _now()


class WebhookEndpoint(Base):
    """A tenant's webhook receiver. The signing secret must be kept to sign with, so it is
    stored as is (never returned after creation or rotation)."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSONB, nullable=False)
    secret: Mapped[str] = mapped_column(String(128), nullable=False)
    # After a rotation that keeps the old secret for 24 h, deliveries carry both signatures.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Deliveries in a row that used up every retry; at the limit the endpoint is disabled
    # until its owner updates it.
    failed_deliveries: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class WebhookDelivery(Base):
    """One event for one endpoint: written in the transaction that ended the object (the
    outbox), sent by the control role until the receiver answers 2xx or retries run out."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    )
    # The event's id: also the `webhook-id` header, the same on every retry.
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    object_id: Mapped[str] = mapped_column(String(64), nullable=False)
    # pending -> delivered | failed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = _now()
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _now()
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ux_webhook_deliveries_event", "endpoint_id", "event_id", unique=True),
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )


class Conversation(Base):
    """A Conversations API conversation; its items are ``conversation_items`` rows."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSONB)
    created_at: Mapped[datetime] = _now()
    # Deleting a conversation keeps its items (as OpenAI does) but hides both.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ConversationItem(Base):
    """One item of a conversation, in ``(seq, sub)`` order; or, with ``response_id`` and no
    item, the place of a background or flex response whose items are added once it ends."""

    __tablename__ = "conversation_items"

    conversation_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, server_default=text("nextval('conversation_item_seq')")
    )
    sub: Mapped[int] = mapped_column(Integer, primary_key=True, server_default="0")
    item_id: Mapped[str | None] = mapped_column(String(64))
    response_id: Mapped[str | None] = mapped_column(String(64))
    item: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        Index(
            "ux_conversation_items_item",
            "conversation_id",
            "item_id",
            unique=True,
            postgresql_where=text("item_id IS NOT NULL"),
        ),
    )


class MessageBatch(Base):
    """Marks the batch created from ``input_file_id`` as a Message Batch (Anthropic's API):
    it runs as any batch does and is shown in Anthropic's shape on ``/v1/messages/batches``."""

    __tablename__ = "message_batches"

    input_file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), nullable=False)
    request_count: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = _now()
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_message_batches_owner", "owner", "created_at"),)
