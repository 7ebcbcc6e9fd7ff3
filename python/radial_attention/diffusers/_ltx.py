"""LTX-Video self-attention (LTXVideoTransformer3DModel transformer_blocks[i].attn1) with the
radial mask.

LTX has no joint attention: attn1 runs over the video tokens alone (packed frame-major by
the pipeline) and the text goes through cross-attention (attn2), which stays stock. The
transformer takes packed tokens [B, S, C], so the latent geometry comes from the num_frames,
height and width the pipeline passes; without them (or when the tokens are not exactly that
video, e.g. conditioning tokens appended) the layer runs stock.
"""

from ._processor import RadialProcessorBase

TIMESTEP_ARG = 2  # forward(hidden_states, encoder_hidden_states, timestep, ...)


class LTXRadialProcessor(RadialProcessorBase):
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 image_rotary_emb=None):
        geometry = self.state.geometry
        if (self.use_stock() or encoder_hidden_states is not None or attention_mask is not None
                or geometry[0] * geometry[1] != hidden_states.shape[1]
                or self.context_parallel() is not None):
            self.count("stock")
            return self.state.timed(
                lambda: self.stock(attn, hidden_states, encoder_hidden_states, attention_mask,
                                   image_rotary_emb), hidden_states.device)
        self.count("radial")
        query = attn.norm_q(attn.to_q(hidden_states))
        key = attn.norm_k(attn.to_k(hidden_states))
        value = attn.to_v(hidden_states)
        if image_rotary_emb is not None:
            from diffusers.models.transformers.transformer_ltx import apply_rotary_emb

            query = apply_rotary_emb(query, image_rotary_emb)
            key = apply_rotary_emb(key, image_rotary_emb)
        query, key, value = (x.unflatten(2, (attn.heads, -1)) for x in (query, key, value))
        out = self.attend(query, key, value, text_tokens=0, text_valid=-1, parallel=False)
        out = out.flatten(2, 3).to(query.dtype)
        return attn.to_out[1](attn.to_out[0](out))


def self_attentions(transformer):
    """(layer index, attention module) of every self-attention, in execution order."""
    return [(i, block.attn1) for i, block in enumerate(transformer.transformer_blocks)]


def call_geometry(transformer, args, kwargs):
    """(latent frames, tokens per frame) from forward(hidden_states, encoder_hidden_states,
    timestep, encoder_attention_mask, num_frames, height, width, ...), or None."""
    names = ("num_frames", "height", "width")
    values = [kwargs.get(name, args[4 + i] if len(args) > 4 + i else None)
              for i, name in enumerate(names)]
    if any(v is None for v in values):
        return None
    frames, height, width = (int(v) for v in values)
    p, p_t = transformer.config.patch_size, transformer.config.patch_size_t
    return frames // p_t, (height // p) * (width // p)
