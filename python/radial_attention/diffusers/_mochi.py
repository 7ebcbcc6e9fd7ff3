"""Mochi-1 joint attention (MochiTransformer3DModel blocks[i].attn1) with the radial mask.

One self-attention runs over the video tokens followed by the text tokens (T5, padded to 256).
The stock processor attends, per batch element, over the video and the valid text tokens
only (its mask's nonzero positions, gathered), and leaves zeros at the padded text rows; so
does this one, with the radial plan over the video and the gathered text dense. Like the stock
processor, it reads the mask's valid positions on the host in every layer, so a Mochi-1
transformer compiles with graph breaks there (not with fullgraph=True).
"""

import torch
import torch.nn.functional as F

from ._processor import RadialProcessorBase

# The pipeline's timesteps rise during a generation (Mochi's sigmas are inverted).
TIMESTEPS_RISE = True
TIMESTEP_ARG = 2  # forward(hidden_states, encoder_hidden_states, timestep, ...)


def _heads(x, heads, norm):
    x = x.unflatten(2, (heads, -1))
    return norm(x) if norm is not None else x


def _rotate(x, cos, sin):
    """Mochi's rotary embedding of x [B, S, H, D]: (even, odd) channel pairs, in float32."""
    even, odd = x[..., 0::2].float(), x[..., 1::2].float()
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2).to(x.dtype)


class MochiRadialProcessor(RadialProcessorBase):
    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask,
                 image_rotary_emb=None):
        if self.use_stock():
            self.count("stock")
            return self.state.timed(
                lambda: self.stock(attn, hidden_states, encoder_hidden_states, attention_mask,
                                   image_rotary_emb=image_rotary_emb), hidden_states.device)
        self.count("radial")
        query = _heads(attn.to_q(hidden_states), attn.heads, attn.norm_q)
        key = _heads(attn.to_k(hidden_states), attn.heads, attn.norm_k)
        value = _heads(attn.to_v(hidden_states), attn.heads, None)
        text_q = _heads(attn.add_q_proj(encoder_hidden_states), attn.heads, attn.norm_added_q)
        text_k = _heads(attn.add_k_proj(encoder_hidden_states), attn.heads, attn.norm_added_k)
        text_v = _heads(attn.add_v_proj(encoder_hidden_states), attn.heads, None)
        if image_rotary_emb is not None:  # the video tokens only
            query, key = _rotate(query, *image_rotary_emb), _rotate(key, *image_rotary_emb)

        video, text = query.shape[1], text_q.shape[1]
        outputs = []
        for i in range(query.shape[0]):
            valid = (torch.nonzero(attention_mask[i].flatten()).flatten()
                     if attention_mask is not None else slice(None))
            parts = [torch.cat([x[i:i + 1], t[i:i + 1, valid]], dim=1)
                     for x, t in ((query, text_q), (key, text_k), (value, text_v))]
            n = parts[0].shape[1] - video
            out = self.attend(*parts, text_tokens=n, text_valid=-1, parallel=False)
            outputs.append(F.pad(out, (0, 0, 0, 0, 0, text - n)))
        out = torch.cat(outputs, dim=0).flatten(2, 3)
        out, context = out.split_with_sizes((video, text), dim=1)
        out = attn.to_out[1](attn.to_out[0](out))
        if hasattr(attn, "to_add_out"):
            context = attn.to_add_out(context)
        return out, context


def self_attentions(transformer):
    """(layer index, attention module) of every joint attention, in execution order."""
    return [(i, block.attn1) for i, block in enumerate(transformer.transformer_blocks)]


def latent_geometry(transformer, hidden_states):
    _, _, frames, height, width = hidden_states.shape
    p = transformer.config.patch_size
    return frames, (height // p) * (width // p)
