"""Reference CPU engine on Hugging Face transformers with real (continuous) batching.

One scheduler coroutine owns the running batch. Each iteration it drops finished/aborted rows,
prefills newly admitted requests (merging them into the running batch when the KV cache layout
allows it), then runs one decode step for every row. The torch work runs on a single dedicated
worker thread so the event loop keeps serving HTTP traffic, aborts and new submissions.
"""

from __future__ import annotations

import asyncio
import heapq
import inspect
import itertools
import secrets
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from inference_platform.engines.base import (
    Delta,
    Engine,
    EngineAborted,
    EngineError,
    GenerationRequest,
    TokenLogprob,
    context_length_error,
)
from inference_platform.engines.kv_batch import (
    Batch,
    cache_pairs,
    merge_batches,
    top_p_filter,
    trim_left_padding,
)
from inference_platform.engines.text import Detokenizer, StopMatcher
from inference_platform.engines.tokenizer import ModelTokenizer
from inference_platform.structured import LOGPROBS

DEFAULT_BATCH_SIZE = 8
# Prompt tokens decoded together with the output: tokenizers that drop the leading space of the
# first decoded token (SentencePiece) would otherwise glue the first output word to the prompt.
_DETOK_CONTEXT = 5
# JSON has no -inf: the floor OpenAI reports for a token the model rules out.
_LOGPROB_FLOOR = -9999.0


@dataclass(eq=False)
class _Sequence:
    """Per-request state; ``done`` means the scheduler must drop it (finished or aborted)."""

    request: GenerationRequest
    prompt_ids: list[int]
    generator: torch.Generator
    detok: Detokenizer
    stopper: StopMatcher
    queue: asyncio.Queue[Delta | EngineError] = field(default_factory=asyncio.Queue)
    output_ids: list[int] = field(default_factory=list)
    done: bool = False
    # The last sampled token's log probabilities (requests that asked for them), set by
    # ``_sample`` on the torch thread and sent with that token's delta.
    logprob: TokenLogprob | None = None


class TransformersEngine(Engine):
    """Batched token-by-token decoding with a KV cache on Hugging Face transformers.

    engine_args: ``batch_size`` (8), ``torch_threads``, ``max_model_len``, ``dtype``
    ("float32"), ``device`` ("cpu"), ``continuous_batching`` (True: new requests join the
    running batch; False: they wait for it to drain).
    Use the engine only from the event loop that called ``start()``.
    """

    kind = "transformers"
    features = frozenset({LOGPROBS})

    def __init__(self, model_name: str, path: str | None, engine_args: dict[str, Any]) -> None:
        super().__init__(model_name, path, engine_args)
        self._batch_size = max(1, int(self.engine_args.get("batch_size", DEFAULT_BATCH_SIZE)))
        self._join_running = bool(self.engine_args.get("continuous_batching", True))
        self._device = torch.device(str(self.engine_args.get("device", "cpu")))
        self._model: Any = None
        self._tokenizer: ModelTokenizer | None = None
        self._max_len: int | None = None
        self._eos_ids: frozenset[int] = frozenset()
        self._pad_id = 0
        self._cache_kwarg = "past_key_values"
        self._logits_kwarg: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._waiting: list[tuple[int, int, _Sequence]] = []
        self._arrivals = itertools.count()
        self._sequences: dict[str, _Sequence] = {}
        self._batch: Batch[_Sequence] | None = None
        self._peak_batch = 0
        self._steps = 0

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.path is None:
            raise EngineError(f"model {self.model_name!r} has no path to load")
        threads = self.engine_args.get("torch_threads")
        if threads:
            torch.set_num_threads(int(threads))  # process-wide: one engine per worker process
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"engine-{self.model_name}")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)
        self._wakeup = asyncio.Event()
        self._scheduler = loop.create_task(self._schedule_forever(), name="engine-scheduler")

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.cancel()
            try:
                await self._scheduler
            except asyncio.CancelledError:
                pass
            self._scheduler = None
        for seq in list(self._sequences.values()):
            self._fail(seq, EngineAborted("the engine is shutting down"))
        self._waiting.clear()
        self._batch = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _load(self) -> None:
        """Runs on the worker thread: loading takes seconds and must not block the loop."""
        import transformers
        from transformers import AutoModelForCausalLM

        dtype = getattr(torch, str(self.engine_args.get("dtype", "float32")))
        # transformers 5 renamed ``torch_dtype`` to ``dtype``.
        dtype_kwarg = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
        path = str(self.path)
        self._tokenizer = tokenizer = ModelTokenizer.load(path)
        model: Any = AutoModelForCausalLM.from_pretrained(path, **{dtype_kwarg: dtype})
        self._model = model.to(self._device).eval()
        params = inspect.signature(self._model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        for name in ("logits_to_keep", "num_logits_to_keep"):
            if name in params:
                self._logits_kwarg = name
                break
        self._eos_ids = self._collect_eos_ids()
        candidates = (tokenizer.pad_token_id, tokenizer.eos_token_id)
        self._pad_id = next((i for i in candidates if i is not None), 0)
        self._max_len = self._configured_max_len(self._model.config)
        self._warm_up()

    def _collect_eos_ids(self) -> frozenset[int]:
        ids: set[int] = set()
        candidates: list[Any] = [self._require_tokenizer().eos_token_id]
        generation_config = getattr(self._model, "generation_config", None)
        candidates.append(getattr(generation_config, "eos_token_id", None))
        for value in candidates:
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return frozenset(ids)

    def _configured_max_len(self, config: Any) -> int:
        if self.engine_args.get("max_model_len"):
            return int(self.engine_args["max_model_len"])
        value = getattr(config, "max_position_embeddings", None)
        return int(value) if value else 2048

    def _warm_up(self) -> None:
        """One tiny forward so the first real request does not pay lazy-init costs."""
        ids = torch.tensor([[self._pad_id]], device=self._device)
        self._forward(ids, torch.ones_like(ids), torch.zeros_like(ids), None)

    # ----------------------------------------------------------------------------- contract

    @property
    def max_model_len(self) -> int:
        if self._max_len is None:
            # Before start(): engine_args, else the model's config (cheap, no weights).
            config: Any = None
            if not self.engine_args.get("max_model_len") and self.path is not None:
                from transformers import AutoConfig

                config = AutoConfig.from_pretrained(self.path)
            self._max_len = self._configured_max_len(config)
        return self._max_len

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        return self._require_tokenizer().render_chat(messages, tools)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def stats(self) -> dict[str, int]:
        return {
            "running": len(self._batch.seqs) if self._batch else 0,
            "waiting": sum(1 for _, _, seq in self._waiting if not seq.done),
            "batch_size": self._batch_size,
            "peak_batch": self._peak_batch,
            "steps": self._steps,
        }

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        params = request.params
        prompt_ids = self._encode(request.prompt) or [self._pad_id]
        if len(prompt_ids) + params.max_tokens > self.max_model_len:
            raise context_length_error(len(prompt_ids), params.max_tokens, self.max_model_len)
        if params.max_tokens <= 0:
            yield Delta("", "length", len(prompt_ids), 0)
            return
        if request.request_id in self._sequences:
            raise EngineError(f"request id {request.request_id!r} is already in use")
        seq = self._enqueue(request, prompt_ids)
        try:
            while True:
                item = await seq.queue.get()
                if isinstance(item, EngineError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            # Also reached when the consumer walks away (disconnect): free the slot.
            seq.done = True
            self._sequences.pop(request.request_id, None)

    async def abort(self, request_id: str) -> None:
        seq = self._sequences.get(request_id)
        if seq is not None and not seq.done:
            self._fail(seq, EngineAborted(f"request {request_id} was aborted"))

    # ----------------------------------------------------------------------------- helpers

    def _require_tokenizer(self) -> ModelTokenizer:
        if self._tokenizer is None:
            raise EngineError("the engine is not started")
        return self._tokenizer

    def _encode(self, text: str) -> list[int]:
        return self._require_tokenizer().encode(text)

    def _decode(self, ids: list[int]) -> str:
        return self._require_tokenizer().decode(ids)

    def _enqueue(self, request: GenerationRequest, prompt_ids: list[int]) -> _Sequence:
        if self._wakeup is None:
            raise EngineError("the engine is not started")
        params = request.params
        generator = torch.Generator(device=self._device)
        seed = params.seed if params.seed is not None else secrets.randbits(63)
        generator.manual_seed(seed)
        seq = _Sequence(
            request=request,
            prompt_ids=prompt_ids,
            generator=generator,
            detok=Detokenizer(self._decode, prompt_ids[-_DETOK_CONTEXT:]),
            stopper=StopMatcher(params.stop),
        )
        self._sequences[request.request_id] = seq
        heapq.heappush(self._waiting, (request.priority, next(self._arrivals), seq))
        self._wakeup.set()
        return seq

    def _fail(self, seq: _Sequence, error: EngineError) -> None:
        seq.done = True
        seq.queue.put_nowait(error)

    # ----------------------------------------------------------------------------- scheduler

    async def _schedule_forever(self) -> None:
        assert self._wakeup is not None
        while True:
            if self._batch is None and not self._has_waiting():
                self._wakeup.clear()
                await self._wakeup.wait()
                # Let requests submitted in the same burst arrive before forming a batch.
                await asyncio.sleep(0)
                continue
            try:
                await self._iterate()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed step must not kill the scheduler
                self._fail_batch(EngineError(f"generation failed: {exc!r}"))

    def _has_waiting(self) -> bool:
        while self._waiting and self._waiting[0][2].done:
            heapq.heappop(self._waiting)
        return bool(self._waiting)

    async def _iterate(self) -> None:
        self._prune()
        admitted = self._admit()
        if admitted:
            await self._prefill(admitted)
            self._prune()
        if self._batch is not None:
            await self._decode_step()
            self._prune()

    def _admit(self) -> list[_Sequence]:
        """Pop the best waiting requests that fit in the free batch slots."""
        running = len(self._batch.seqs) if self._batch else 0
        if running and not self._can_join():
            return []
        admitted: list[_Sequence] = []
        while self._has_waiting() and running + len(admitted) < self._batch_size:
            admitted.append(heapq.heappop(self._waiting)[2])
        return admitted

    def _can_join(self) -> bool:
        return (
            self._join_running
            and self._batch is not None
            and cache_pairs(self._batch.cache) is not None
        )

    def _fail_batch(self, error: EngineError) -> None:
        if self._batch is not None:
            for seq in self._batch.seqs:
                if not seq.done:
                    self._fail(seq, error)
        self._batch = None

    async def _run_in_worker(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # ----------------------------------------------------------------------------- torch work

    def _forward(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        position_ids: torch.Tensor,
        cache: Any,
    ) -> tuple[torch.Tensor, Any]:
        """One model call; returns (last-position logits [B, V], updated cache)."""
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "position_ids": position_ids,
            "use_cache": True,
            self._cache_kwarg: cache,
        }
        if self._logits_kwarg is not None:
            kwargs[self._logits_kwarg] = 1
        with torch.inference_mode():
            out = self._model(**kwargs)
        new_cache = getattr(out, "cache", None)
        if new_cache is None:
            new_cache = out.past_key_values
        return out.logits[:, -1, :].float(), new_cache

    def _sample(self, logits: torch.Tensor, seqs: list[_Sequence]) -> list[int]:
        tokens = []
        for row, seq in zip(logits, seqs, strict=True):
            params = seq.request.params
            if params.temperature <= 0:
                token = int(row.argmax())
            else:
                probs = torch.softmax(row / params.temperature, dim=-1)
                if params.top_p < 1.0:
                    probs = top_p_filter(probs, params.top_p)
                token = int(torch.multinomial(probs, 1, generator=seq.generator))
            if params.logprobs is not None:
                seq.logprob = self._token_logprob(row, token, params.logprobs)
            tokens.append(token)
        return tokens

    def _token_logprob(self, row: torch.Tensor, token: int, top: int) -> TokenLogprob:
        """The model's own log probabilities (before temperature and top_p, as vLLM reports
        them by default) of the sampled token and the ``top`` most likely ones."""
        logprobs = torch.log_softmax(row, dim=-1)
        best = torch.topk(logprobs, top) if top > 0 else None
        alternatives = (
            ()
            if best is None
            else tuple(
                (self._decode([int(i)]), max(float(v), _LOGPROB_FLOOR))
                for v, i in zip(best.values, best.indices, strict=True)
            )
        )
        value = max(float(logprobs[token]), _LOGPROB_FLOOR)
        return TokenLogprob(self._decode([token]), value, alternatives)

    def _prefill_work(self, seqs: list[_Sequence]) -> tuple[Batch[_Sequence], list[int]]:
        length = max(len(seq.prompt_ids) for seq in seqs)
        ids = torch.full((len(seqs), length), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for row, seq in enumerate(seqs):
            n = len(seq.prompt_ids)
            ids[row, length - n :] = torch.tensor(seq.prompt_ids, dtype=torch.long)
            mask[row, length - n :] = 1
        ids, mask = ids.to(self._device), mask.to(self._device)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(ids, mask, position_ids, None)
        tokens = self._sample(logits, seqs)
        batch = Batch(
            seqs=list(seqs),
            cache=cache,
            mask=mask,
            positions=mask.sum(-1),
            next_tokens=torch.tensor(tokens, dtype=torch.long, device=self._device),
        )
        return batch, tokens

    def _decode_work(self, batch: Batch[_Sequence]) -> list[int]:
        mask = torch.cat([batch.mask, batch.mask.new_ones((batch.mask.shape[0], 1))], dim=1)
        logits, cache = self._forward(
            batch.next_tokens[:, None], mask, batch.positions[:, None], batch.cache
        )
        tokens = self._sample(logits, batch.seqs)
        batch.cache, batch.mask = cache, mask
        batch.positions = batch.positions + 1
        batch.next_tokens = torch.tensor(tokens, dtype=torch.long, device=self._device)
        return tokens

    async def _prefill(self, seqs: list[_Sequence]) -> None:
        try:
            new_batch, tokens = await self._run_in_worker(self._prefill_work, seqs)
        except Exception as exc:
            for seq in seqs:
                if not seq.done:
                    self._fail(seq, EngineError(f"prefill failed: {exc!r}"))
            return
        self._accept_tokens(seqs, tokens)
        self._batch = new_batch if self._batch is None else merge_batches(self._batch, new_batch)
        self._note_batch_size()

    async def _decode_step(self) -> None:
        assert self._batch is not None
        batch = self._batch
        tokens = await self._run_in_worker(self._decode_work, batch)
        self._steps += 1
        self._accept_tokens(batch.seqs, tokens)

    def _note_batch_size(self) -> None:
        if self._batch is not None:
            self._peak_batch = max(self._peak_batch, len(self._batch.seqs))

    def _prune(self) -> None:
        """Drop finished/aborted rows so their slots (and KV memory) are freed right away."""
        batch = self._batch
        if batch is None:
            return
        keep = [i for i, seq in enumerate(batch.seqs) if not seq.done]
        if not keep:
            self._batch = None
            return
        if len(keep) == len(batch.seqs):
            return
        index = torch.tensor(keep, dtype=torch.long, device=self._device)
        batch.cache.batch_select_indices(index)
        batch.seqs = [batch.seqs[i] for i in keep]
        batch.mask = batch.mask[index]
        batch.positions = batch.positions[index]
        batch.next_tokens = batch.next_tokens[index]
        trim_left_padding(batch)

    # ----------------------------------------------------------------------------- outputs

    def _accept_tokens(self, seqs: list[_Sequence], tokens: list[int]) -> None:
        for seq, token in zip(seqs, tokens, strict=True):
            if not seq.done:
                self._accept(seq, token)

    def _accept(self, seq: _Sequence, token: int) -> None:
        """Record one sampled token and emit whatever text it completes."""
        params = seq.request.params
        seq.output_ids.append(token)
        hit_eos = token in self._eos_ids and not params.ignore_eos
        hit_length = len(seq.output_ids) >= params.max_tokens
        piece = "" if hit_eos else seq.detok.push(token)
        if hit_eos or hit_length:
            piece += seq.detok.flush()
        text, hit_stop = seq.stopper.feed(piece)
        finish: str | None = None
        if hit_stop or hit_eos:
            finish = "stop"
        elif hit_length:
            finish = "length"
            text += seq.stopper.flush()
        logprobs = () if seq.logprob is None else (seq.logprob,)
        seq.logprob = None
        if text or finish or logprobs:
            seq.queue.put_nowait(
                Delta(text, finish, len(seq.prompt_ids), len(seq.output_ids), logprobs)
            )
        if finish:
            seq.done = True
