"""Wan-like self-attention with the radial mask: Wan2.1 / Wan2.2 (WanTransformer3DModel,
Wan2.2-TI2V-5B included), Wan VACE (WanVACETransformer3DModel) and SkyReels-V2
(SkyReelsV2Transformer3DModel), blocks[i].attn1.

The video tokens are the whole sequence (frame-major after patchify); the text (and the CLIP
image tokens of the I2V models) goes through cross-attention (attn2), which stays stock.
VACE's reference images are latent frames in front of the video, so the geometry counts them;
its control blocks attend over the control tokens, padded to the video's length and laid out
as the video. SkyReels-V2's block-causal mask (diffusion forcing with causal_block_size > 1)
reaches attn1 as an attention mask: those calls run stock.
"""

import torch

from ._processor import RadialProcessorBase


def _projections(attn, hidden_states):
    if getattr(attn, "fused_projections", False):
        return attn.to_qkv(hidden_states).chunk(3, dim=-1)
    return attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)


def _rotate(x, rotary):
    """Wan's rotary embedding: each (even, odd) channel pair of x [B, S, H, D] turned by the
    angle whose cosine and sine diffusers gives per pair (repeated in both channels)."""
    cos, sin = rotary
    even, odd = x.unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2], sin[..., 1::2]
    turned = torch.stack((even * c - odd * s, even * s + odd * c), dim=-1).flatten(-2)
    return turned.type_as(x)


class WanRadialProcessor(RadialProcessorBase):
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 rotary_emb=None):
        if (self.use_stock() or encoder_hidden_states is not None or attention_mask is not None
                or not isinstance(rotary_emb, (tuple, list))):
            self.count("stock")
            return self.state.timed(
                lambda: self.stock(attn, hidden_states, encoder_hidden_states, attention_mask,
                                   rotary_emb), hidden_states.device)
        self.count("radial")
        query, key, value = _projections(attn, hidden_states)
        query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
        key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
        value = value.unflatten(2, (attn.heads, -1))
        query = _rotate(query, rotary_emb)
        key = _rotate(key, rotary_emb)

        out = self.attend(query, key, value, text_tokens=0, text_valid=-1, parallel=True)
        out = out.flatten(2, 3).type_as(query)
        out = attn.to_out[0](out)
        return attn.to_out[1](out)


def self_attentions(transformer):
    """(layer index, attention module) of every self-attention, in execution order. A VACE
    control block counts as the layer whose input its hint joins (config.vace_layers), and
    they all run before the main blocks."""
    main = [(i, block.attn1) for i, block in enumerate(transformer.blocks)]
    control = getattr(transformer, "vace_blocks", None) or []
    return [(transformer.config.vace_layers[j], block.attn1)
            for j, block in enumerate(control)] + main


def latent_geometry(transformer, hidden_states):
    _, _, frames, height, width = hidden_states.shape
    p_t, p_h, p_w = transformer.config.patch_size
    return frames // p_t, (height // p_h) * (width // p_w)


def preset(transformer) -> str:
    """The model preset: Wan VACE and SkyReels-V2 by their class, Wan2.2-TI2V-5B as the Wan
    transformer of 48 latent channels (its VAE's; Wan2.1 and Wan2.2 A14B have 16, or 36 for
    image-to-video)."""
    name = type(transformer).__name__
    if name == "WanVACETransformer3DModel":
        return "wan-vace"
    if name == "SkyReelsV2Transformer3DModel":
        return "skyreels-v2"
    return "wan2.2-ti2v-5b" if transformer.config.in_channels == 48 else "wan"
