"""Production GPU engine on vLLM's v1 ``AsyncLLM`` (written against vLLM 0.26).

vLLM is imported inside ``start()`` only, so this module imports on hosts without vLLM (the
API server, CPU workers, tests). Prompts are tokenized here with the model's Hugging Face
tokenizer and passed as token ids, which avoids vLLM's deprecated raw-string path and makes
the context-length check and ``count_tokens`` agree with what the model actually sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from inference_platform.engines.base import (
    Delta,
    Engine,
    EngineAborted,
    EngineError,
    GenerationRequest,
    SamplingParams,
    context_length_error,
)
from inference_platform.engines.text import encode_prompt, render_chat_template

# engine_args understood by the platform (not vLLM): translated or dropped before AsyncEngineArgs.
_PLATFORM_ONLY_ARGS = frozenset({"batch_size", "torch_threads"})


def vllm_engine_args(path: str, engine_args: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``AsyncEngineArgs``: catalog engine_args plus platform defaults."""
    args = {k: v for k, v in engine_args.items() if k not in _PLATFORM_ONLY_ARGS}
    # Tiers map to priorities (0 realtime, 1 flex, 2 batch); vLLM ignores them under FCFS.
    args.setdefault("scheduling_policy", "priority")
    if "batch_size" in engine_args:
        args.setdefault("max_num_seqs", int(engine_args["batch_size"]))
    args["model"] = path
    return args


@dataclass(eq=False)
class _Stream:
    """One request: a pump task copies vLLM outputs into ``queue`` for ``generate`` to read.

    Decoupling them lets ``abort`` fail the consumer at once (an item on the queue) and stop
    vLLM by cancelling the pump, which is the path vLLM itself uses for disconnects.
    """

    queue: asyncio.Queue[Delta | EngineError] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


class VLLMEngine(Engine):
    """vLLM ``AsyncLLM`` behind the engine contract.

    engine_args: any ``vllm.AsyncEngineArgs`` field (``max_model_len``,
    ``gpu_memory_utilization``, ``tensor_parallel_size``, ``dtype``, ``tokenizer``, ...);
    ``scheduling_policy`` defaults to "priority"; ``batch_size`` maps to ``max_num_seqs``.
    """

    kind = "vllm"

    def __init__(self, model_name: str, path: str | None, engine_args: dict[str, Any]) -> None:
        super().__init__(model_name, path, engine_args)
        self._llm: Any = None
        self._tokenizer: Any = None
        # Fast tokenizers must not be used by two threads at once (see TransformersEngine).
        self._tokenizer_lock = threading.Lock()
        self._max_len: int | None = None
        self._use_priority = False
        self._streams: dict[str, _Stream] = {}

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.path is None:
            raise EngineError(f"model {self.model_name!r} has no path to load")
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
            from vllm.v1.engine.async_llm import AsyncLLM
        except ImportError as exc:
            raise EngineError(
                "engine kind 'vllm' needs vLLM installed (pip install 'inference-platform[vllm]')"
            ) from exc
        args = vllm_engine_args(self.path, self.engine_args)
        self._use_priority = args["scheduling_policy"] == "priority"
        self._tokenizer = await asyncio.to_thread(self._load_tokenizer, args)
        # Blocks while vLLM loads weights and profiles memory, as vLLM's own server does.
        self._llm = AsyncLLM.from_engine_args(AsyncEngineArgs(**args))
        model_config = getattr(self._llm, "model_config", None)
        if model_config is not None and getattr(model_config, "max_model_len", None):
            self._max_len = int(model_config.max_model_len)

    async def stop(self) -> None:
        for request_id, stream in list(self._streams.items()):
            stream.queue.put_nowait(EngineAborted(f"request {request_id} was aborted"))
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None

    def _load_tokenizer(self, args: dict[str, Any]) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(
            args.get("tokenizer") or self.path,
            trust_remote_code=bool(args.get("trust_remote_code", False)),
        )

    # ----------------------------------------------------------------------------- contract

    @property
    def max_model_len(self) -> int:
        if self._max_len is None:
            if self.engine_args.get("max_model_len"):
                self._max_len = int(self.engine_args["max_model_len"])
            elif self.path is not None:
                from transformers import AutoConfig

                config = AutoConfig.from_pretrained(self.path)
                self._max_len = int(getattr(config, "max_position_embeddings", 0) or 2048)
            else:
                return 2048
        return self._max_len

    def render_chat(self, messages: Sequence[dict[str, Any]]) -> str:
        return render_chat_template(self._require_tokenizer(), messages, self._tokenizer_lock)

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def stats(self) -> dict[str, int]:
        return {"active": len(self._streams)}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if self._llm is None:
            raise EngineError("the engine is not started")
        prompt_ids = self._encode(request.prompt)
        max_tokens = request.params.max_tokens
        if len(prompt_ids) + max_tokens > self.max_model_len:
            raise context_length_error(len(prompt_ids), max_tokens, self.max_model_len)
        if request.request_id in self._streams:
            raise EngineError(f"request id {request.request_id!r} is already in use")
        stream = _Stream()
        stream.task = asyncio.get_running_loop().create_task(
            self._pump(request, prompt_ids, stream.queue)
        )
        self._streams[request.request_id] = stream
        try:
            while True:
                item = await stream.queue.get()
                if isinstance(item, EngineError):
                    raise item
                yield item
                if item.finish_reason is not None:
                    return
        finally:
            self._streams.pop(request.request_id, None)
            if not stream.task.done():
                stream.task.cancel()  # consumer left early: vLLM aborts on cancellation

    async def abort(self, request_id: str) -> None:
        stream = self._streams.pop(request_id, None)
        if stream is None:
            return
        stream.queue.put_nowait(EngineAborted(f"request {request_id} was aborted"))
        if stream.task is not None:
            stream.task.cancel()
        if self._llm is not None:
            # Covers a request vLLM registered just before the pump was cancelled.
            with contextlib.suppress(Exception):
                await self._llm.abort(request_id)

    # ----------------------------------------------------------------------------- internals

    def _require_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise EngineError("the engine is not started")
        return self._tokenizer

    def _encode(self, text: str) -> list[int]:
        return encode_prompt(self._require_tokenizer(), text, self._tokenizer_lock)

    def _sampling_params(self, params: SamplingParams) -> Any:
        from vllm.sampling_params import RequestOutputKind
        from vllm.sampling_params import SamplingParams as VllmSamplingParams

        return VllmSamplingParams(
            n=1,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            ignore_eos=params.ignore_eos,
            output_kind=RequestOutputKind.DELTA,
        )

    async def _pump(
        self,
        request: GenerationRequest,
        prompt_ids: list[int],
        queue: asyncio.Queue[Delta | EngineError],
    ) -> None:
        """Copy vLLM's delta outputs into ``queue``; always ends with a final item or error."""
        kwargs: dict[str, Any] = {"priority": request.priority} if self._use_priority else {}
        completion_tokens = 0
        try:
            outputs = self._llm.generate(
                {"prompt_token_ids": prompt_ids},
                self._sampling_params(request.params),
                request.request_id,
                **kwargs,
            )
            async for output in outputs:
                completion = output.outputs[0]
                completion_tokens += len(completion.token_ids)
                finish = _map_finish_reason(completion.finish_reason) if output.finished else None
                if finish == "abort":
                    queue.put_nowait(EngineAborted(f"request {request.request_id} was aborted"))
                    return
                if finish == "error":
                    queue.put_nowait(EngineError("vLLM failed while generating this request"))
                    return
                if completion.text or finish:
                    queue.put_nowait(
                        Delta(completion.text, finish, len(prompt_ids), completion_tokens)
                    )
                if finish:
                    return
            queue.put_nowait(EngineAborted(f"request {request.request_id} ended without output"))
        except asyncio.CancelledError:
            raise
        except EngineError as exc:
            queue.put_nowait(exc)
        except Exception as exc:  # vLLM validation errors, EngineDeadError, ...
            queue.put_nowait(EngineError(f"vLLM generation failed: {exc!r}"))


def _map_finish_reason(reason: str | None) -> str:
    """vLLM reports stop/length/abort/error; only stop and length reach the caller as-is."""
    if reason in ("length", "abort", "error"):
        return reason
    return "stop"
