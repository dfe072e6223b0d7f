"""A tiny, randomly initialised Llama-style model with a freshly trained BPE tokenizer.

It lets the whole stack (transformers engine, vLLM, the API, tests) run fully offline in a few
seconds. The weights are random, so the output is a stream of random words: that is expected.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

# A file written last inside the build directory: its presence means the build is complete.
_MARKER = ".demo_model_complete"

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
ROLES = ("system", "developer", "user", "assistant")
ROLE_TOKENS = tuple(f"<|{role}|>" for role in ROLES)
# Hermes' tool-call markers, whole tokens as in the models that use them (vLLM's hermes parser
# looks them up in the vocabulary). Not special: they must survive decoding into the text.
TOOL_CALL_TOKENS = ("<tool_call>", "</tool_call>")
# Written into the marker: a demo model built before the vocabulary had the tool-call tokens
# is rebuilt (the weights depend on the vocabulary size).
FORMAT = "format=2"

VOCAB_SIZE = 1536
CORPUS_SENTENCES = 4000
WORD_LOGIT_SCALE = 20.0

# ChatML-like: each turn is "<|role|>\ncontent</s>\n"; the generation prompt opens an assistant
# turn so the model's EOS (</s>) also ends the assistant's answer. Tool calling follows Hermes, so
# vLLM's ``hermes`` parser reads the model's calls: the function definitions go into a system turn
# first, an assistant's calls are written as <tool_call>{"name": ..., "arguments": ...}</tool_call>,
# and a tool result is a "tool" turn (its role written as plain text: it has no special token).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% if tools %}<|system|>\nYou may call these functions: {{ tools | tojson }}\n"
    'To call one, write <tool_call>{"name": <name>, "arguments": <object>}</tool_call>'
    "{{ eos_token }}\n{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'developer', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('Unsupported chat role: ' + message['role']) }}"
    "{% endif %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] %}{{ message['content'] }}{% endif %}"
    "{% for call in message['tool_calls'] or [] %}"
    "<tool_call>{{ {'name': call['function']['name'], 'arguments': call['function']['arguments']}"
    " | tojson }}</tool_call>"
    "{% endfor %}"
    "{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# Common English words; sentences are random walks over them so BPE learns word-like tokens.
_WORDS = """
the be to of and a in that have it for not on with he as you do at this but his by from they we
say her she or an will my one all would there their what so up out if about who get which go me
when make can like time no just him know take people into year your good some could them see
other than then now look only come its over think also back after use two how our work first
well way even new want because any these give day most us is are was were been has had said
made went took came saw knew thought told asked found gave used tried called kept left felt
model token batch queue server request answer stream engine worker system prompt message text
word sentence story book letter number page line list table chart file folder window screen
house room door garden tree flower river lake sea mountain road city town street market shop
school teacher student class lesson friend family mother father child brother sister dog cat
bird fish horse morning evening night week month summer winter spring autumn rain snow wind
sun moon star light dark water fire earth air food bread apple orange coffee tea milk music
song voice sound colour red green blue yellow white black small large long short fast slow
quick quiet loud bright happy sad early late young old great little right wrong true false
open close begin end start stop read write send find keep move watch count love need follow
share check learn bring help show play run walk talk sing build carry hold turn change grow
simple clear careful gentle strong warm cold soft hard heavy easy ready busy free full empty
always never often sometimes usually again together already almost soon later today tomorrow
yesterday here everywhere nothing something everything someone question idea reason problem
""".split()

_EXTRA = (
    "Hello, world!",
    "How are you?",
    "I am fine, thank you.",
    "What time is it?",
    "Please explain it step by step.",
    "The answer is 42.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9.",
    "Is it raining? Yes, it is.",
    "Write a short poem about the sea.",
    "Thanks a lot!",
)


def _corpus(seed: int) -> list[str]:
    """English-like sentences: enough structure for BPE to learn real-looking subwords."""
    rng = random.Random(seed)
    lines = list(_EXTRA) + [f"{role}: {rng.choice(_EXTRA)}" for role in ROLES]
    for _ in range(CORPUS_SENTENCES):
        words = rng.choices(_WORDS, k=rng.randint(4, 14))
        sentence = " ".join(words)
        lines.append(sentence[0].upper() + sentence[1:] + rng.choice(".!?,;:"))
    return lines


def _train_tokenizer(seed: int) -> Any:
    """Train a byte-level BPE (any text encodes) and wrap it as a transformers tokenizer."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    specials = [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, *ROLE_TOKENS]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(seed), trainer=trainer)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_CALL_TOKENS])
    # Plain prompts get a BOS like Llama tokenizers; the chat template writes its own BOS and
    # engines skip the automatic one when the text already starts with it.
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A",
        pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B",
        special_tokens=[(BOS_TOKEN, bos_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",
        model_max_length=2048,
        chat_template=CHAT_TEMPLATE,
    )


def _build_model(tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        # head_dim 32: the smallest size every vLLM attention backend supports.
        head_dim=32,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    # fork_rng keeps the caller's global RNG untouched while making the weights reproducible.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    _favour_words(model, tokenizer)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model.eval()


def _favour_words(model: Any, tokenizer: Any) -> None:
    """Scale up the output rows of space-prefixed word tokens.

    With plain random weights every token (stray bytes, half UTF-8 sequences, control chars) is
    about equally likely and the output looks like line noise. Larger rows give those word
    tokens much larger logits, so samples read as random words instead.
    """
    import torch

    word_ids = [
        idx
        for token, idx in tokenizer.get_vocab().items()
        if token.startswith("\u0120") and token[1:].isascii() and token[1:].isalpha()
    ]
    with torch.no_grad():
        model.lm_head.weight[word_ids] *= WORD_LOGIT_SCALE


def _make_portable(tokenizer_dir: Path) -> None:
    """Name the generic fast tokenizer class so transformers 4.x and 5.x both load it."""
    config_path = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def _make_readable(directory: Path) -> None:
    """mkdtemp (and some writers) create owner-only files; a model dir is meant to be shared."""
    directory.chmod(0o755)
    for child in directory.iterdir():
        child.chmod(0o644)


def _refresh_template(target: Path) -> None:
    """Give a demo model built by an older version the current chat template (the weights
    and vocabulary do not change; only how turns are written)."""
    config_path = target / "tokenizer_config.json"
    template_path = target / "chat_template.jinja"
    try:
        if template_path.is_file():
            if template_path.read_text() != CHAT_TEMPLATE:
                template_path.write_text(CHAT_TEMPLATE)
            return
        config = json.loads(config_path.read_text())
        if config.get("chat_template") != CHAT_TEMPLATE:
            config["chat_template"] = CHAT_TEMPLATE
            config_path.write_text(json.dumps(config, indent=2) + "\n")
    except OSError:
        pass  # a read-only shared model keeps its template


def is_demo_model(path: str | Path) -> bool:
    """True when ``path`` holds a completely built demo model."""
    return (Path(path) / _MARKER).is_file()


def _is_current(path: Path) -> bool:
    """True when the demo model at ``path`` has today's vocabulary (tool-call tokens)."""
    try:
        return FORMAT in (path / _MARKER).read_text().split()
    except OSError:
        return False


def _publish(tmp: Path, target: Path) -> None:
    """Atomically move the finished build into place; losing a race to another builder is fine."""
    if target.is_dir() and not any(target.iterdir()):
        # An empty directory (e.g. created by a caller) is just a placeholder; replace it.
        try:
            target.rmdir()
        except OSError:
            pass
    try:
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not is_demo_model(target):
            raise


def build_demo_model(path: str | Path, *, seed: int = 0) -> Path:
    """Build the demo model at ``path`` (if not already there) and return the path.

    Safe to call from several processes at once: each builds in a private temp directory next
    to ``path`` and renames it into place, so readers never see a half-written model.
    """
    target = Path(path).expanduser().resolve()
    if is_demo_model(target) and _is_current(target):
        _refresh_template(target)
        return target
    outdated = is_demo_model(target)
    if not outdated and target.exists() and not (target.is_dir() and not any(target.iterdir())):
        raise FileExistsError(f"{target} exists and is not a demo model; refusing to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        tokenizer = _train_tokenizer(seed)
        model = _build_model(tokenizer, seed)
        tokenizer.save_pretrained(tmp)
        _make_portable(tmp)
        model.save_pretrained(tmp)
        (tmp / _MARKER).write_text(f"seed={seed}\n{FORMAT}\n")
        _make_readable(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if outdated:
        _retire(target)
    _publish(tmp, target)
    return target


def _retire(target: Path) -> None:
    """Move an outdated demo model aside (then delete it) so the new build can take its
    place; another builder may have done so already, which is fine."""
    if _is_current(target):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        os.rename(target, old / target.name)
    except OSError:
        pass
    shutil.rmtree(old, ignore_errors=True)


# The demo embedding model: the same tiny Llama with other weights. vLLM's pooling runner turns
# a causal LM into an embedding model (the last token's hidden state, L2-normalised), so the
# one architecture every vLLM build loads serves both demos.
EMBED_SEED = 1


def build_demo_embedding_model(path: str | Path) -> Path:
    """Build the demo embedding model at ``path`` (if not already there)."""
    return build_demo_model(path, seed=EMBED_SEED)
