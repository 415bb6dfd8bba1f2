"""Tiny randomly initialised models with an in-process tokenizer.

They build in about a second and need no files, so tests, docs and first
experiments run anywhere.
"""

from __future__ import annotations

from functools import lru_cache

import torch

_CORPUS = [
    "the movie was great and the acting was wonderful",
    "a dull boring film with a terrible script",
    "i loved every minute of this charming story",
    "the plot made no sense and the ending was awful",
    "brilliant direction, moving performances, a joy to watch",
    "what a waste of time, the worst film this year",
]


@lru_cache(maxsize=4)
def tiny_tokenizer(vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on a few sentences (any text encodes)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<pad>", "[CLS]", "[SEP]"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 5, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<pad>",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )


def tiny_hf_model(arch: str = "gpt2", n_layer: int = 3, width: int = 32, seed: int = 0):
    """A plain (unwrapped) Hugging Face model: "gpt2", "llama" or "bert"."""
    import transformers as tf

    from ..engine.modeling import limit_tokenizer_length

    tok = tiny_tokenizer()
    common = dict(vocab_size=len(tok), pad_token_id=tok.pad_token_id)
    if arch == "gpt2":
        config = tf.GPT2Config(
            n_layer=n_layer,
            n_embd=width,
            n_head=2,
            n_positions=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **common,
        )
        cls = tf.GPT2LMHeadModel
    elif arch == "llama":
        config = tf.LlamaConfig(
            num_hidden_layers=n_layer,
            hidden_size=width,
            intermediate_size=2 * width,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=256,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **common,
        )
        cls = tf.LlamaForCausalLM
    elif arch == "bert":
        config = tf.BertConfig(
            num_hidden_layers=n_layer,
            hidden_size=width,
            intermediate_size=2 * width,
            num_attention_heads=2,
            max_position_embeddings=256,
            **common,
        )
        cls = tf.BertModel
    else:
        raise ValueError(f"unknown tiny architecture {arch!r}; use 'gpt2', 'llama' or 'bert'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.eval(), limit_tokenizer_length(tok, model)


def tiny_model(arch: str = "gpt2", n_layer: int = 3, width: int = 32, seed: int = 0):
    """An nnsight-wrapped tiny model and its tokenizer, like `load_model` returns."""
    from ..engine.modeling import wrap_model

    model, tok = tiny_hf_model(arch, n_layer=n_layer, width=width, seed=seed)
    return wrap_model(model, tok), tok
