"""The LoRA: which projections it adapts, and how it is saved so that diffusers'
``pipe.load_lora_weights`` (and ``radial_attention.generate --lora``) load it."""

import os
import pathlib
import tempfile

import torch

from .._errors import invalid

# Regular expressions over module names (peft matches target_modules given as a string as a
# full-match regex): the transformer blocks' attention projections, optionally their MLPs.
ATTENTION = {
    "wan": r"blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_v|to_out\.0|add_k_proj|add_v_proj)",
    "hunyuan": r"(transformer_blocks|single_transformer_blocks)\.\d+\.attn\."
               r"(to_q|to_k|to_v|to_out\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)",
}
FEED_FORWARD = {
    "wan": r"blocks\.\d+\.ffn\.net\.(0\.proj|2)",
    "hunyuan": r"(transformer_blocks\.\d+\.(ff|ff_context)\.net\.(0\.proj|2)"
               r"|single_transformer_blocks\.\d+\.(proj_mlp|proj_out))",
}
WEIGHT_NAME = "pytorch_lora_weights.safetensors"


def target_regex(family: str, feed_forward: bool) -> str:
    if feed_forward:
        return f"({ATTENTION[family]}|{FEED_FORWARD[family]})"
    return ATTENTION[family]


def add_lora(transformer, family: str, rank: int, alpha: float, dropout: float,
             feed_forward: bool) -> list:
    """Adds the adapter ("default") and returns its parameters, in float32 whatever the
    base weights are (bf16 weights with fp32 LoRA parameters and optimizer state)."""
    from peft import LoraConfig

    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise invalid("rank", "an int >= 1", repr(rank))
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                        target_modules=target_regex(family, feed_forward), init_lora_weights=True)
    transformer.add_adapter(config)
    params = [p for n, p in transformer.named_parameters() if "lora_" in n]
    for p in params:
        p.data = p.data.float()
        p.requires_grad_(True)
    return params


def lora_state_dict(transformer) -> dict:
    """The adapter's weights by their peft names, float32 on the CPU (for checkpoints)."""
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().float().cpu().clone() for k, v in get_peft_model_state_dict(transformer).items()}


def load_lora_state_dict(transformer, state: dict) -> None:
    from peft.utils import set_peft_model_state_dict

    result = set_peft_model_state_dict(transformer, state)
    unexpected = getattr(result, "unexpected_keys", None)
    if unexpected:
        raise invalid("checkpoint", "LoRA weights of this model and rank", f"unexpected {unexpected[:3]}")


def diffusers_state_dict(transformer, rank: int, alpha: float) -> dict:
    """The weights to ship: alpha / rank folded into each lora_B, so that every loader
    (which, without adapter metadata, takes alpha = rank) applies the trained scale."""
    scale = float(alpha) / rank
    out = {}
    for name, value in lora_state_dict(transformer).items():
        out[name] = value * scale if ".lora_B." in name else value
    return out


def save_for_diffusers(pipeline_class, transformer, folder, rank: int, alpha: float,
                       dtype=torch.float32) -> pathlib.Path:
    """Writes folder/pytorch_lora_weights.safetensors atomically (a temporary folder, then
    a rename of the file), the format ``pipe.load_lora_weights(folder)`` reads."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    layers = {k: v.to(dtype) for k, v in diffusers_state_dict(transformer, rank, alpha).items()}
    with tempfile.TemporaryDirectory(dir=folder, prefix=".lora-tmp-") as tmp:
        pipeline_class.save_lora_weights(tmp, transformer_lora_layers=layers, weight_name=WEIGHT_NAME)
        os.replace(os.path.join(tmp, WEIGHT_NAME), folder / WEIGHT_NAME)
    return folder / WEIGHT_NAME
