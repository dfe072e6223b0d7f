"""What a job has produced so far, read back from its event channel.

Job workers publish, besides the text, running token counts on every ``delta`` and
``choice_end`` (output tokens of that choice so far, its prompt tokens and how many of those
came from the engine's prefix cache). From
those, anyone can tell what an interrupted attempt already produced: a retry continues from
there, and whoever stops a job (cancel, expiry, a lost worker) keeps that output and bills it
without a tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inference_platform.engines.base import TokenLogprob
from inference_platform.events import ChoiceEnd, Event, Started, Terminal, TextDelta, is_terminal


@dataclass
class Progress:
    texts: dict[int, str] = field(default_factory=dict)
    finish: dict[int, str] = field(default_factory=dict)
    output_tokens: dict[int, int] = field(default_factory=dict)
    prompt_tokens: dict[int, int] = field(default_factory=dict)
    # Of those, the tokens the engine's prefix cache served.
    cached_tokens: dict[int, int] = field(default_factory=dict)
    # Per-token log probabilities, for requests that asked for them.
    logprobs: dict[int, list[TokenLogprob]] = field(default_factory=dict)
    attempts: int = 0
    terminal: Terminal | None = None

    @property
    def produced(self) -> bool:
        """Whether any output exists (a job can fail after starting, before its first token)."""
        return bool(self.output_tokens) or any(self.texts.values())

    def text(self, index: int = 0) -> str:
        return self.texts.get(index, "")

    def total_output(self) -> int:
        return sum(self.output_tokens.values())

    def total_prompt(self) -> int:
        # Jobs have one prompt shared by all choices: count it once.
        return max(self.prompt_tokens.values(), default=0)

    def total_cached(self) -> int:
        # The shared prompt is billed once, as its first computation (the fewest cached).
        return min(self.cached_tokens.values(), default=0)


def read(events: list[Event]) -> Progress:
    """Fold channel events (oldest first) up to the first terminal one."""
    state = Progress()
    for event in events:
        if is_terminal(event):
            state.terminal = event  # type: ignore[assignment]
            break
        if isinstance(event, Started):
            state.attempts += 1
            continue
        if not isinstance(event, TextDelta | ChoiceEnd):
            continue
        index = event.index
        if isinstance(event, TextDelta):
            state.texts[index] = state.texts.get(index, "") + event.text
            if event.logprobs:
                state.logprobs.setdefault(index, []).extend(event.logprobs)
        else:
            state.finish[index] = event.finish_reason
        if event.output_tokens is not None:
            state.output_tokens[index] = event.output_tokens
        if event.prompt_tokens is not None:
            state.prompt_tokens[index] = event.prompt_tokens
        if event.cached_tokens is not None:
            state.cached_tokens[index] = event.cached_tokens
    return state
