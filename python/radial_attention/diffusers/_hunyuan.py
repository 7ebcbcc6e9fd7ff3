"""HunyuanVideo joint attention (HunyuanVideoTransformer3DModel, double- and single-stream
blocks) with the radial mask.

One self-attention runs over the video tokens followed by the text tokens; the plan keeps
text rows and columns dense and masks the padded text keys past the valid length, which is
what the stock processor's attention mask does.
"""

import torch

from ._processor import RadialProcessorBase


class HunyuanRadialProcessor(RadialProcessorBase):
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None,
                 image_rotary_emb=None):
        valid = self.state.text_valid
        text = encoder_hidden_states.shape[1] if encoder_hidden_states is not None else 0
        # Without the valid text lengths (read on the host before the forward; unknown while
        # torch.compile traces the whole model) the padding cannot be masked: run stock.
        dense = self.use_stock() or (attention_mask is not None and valid is None)
        if dense and (self.context_parallel() is None or not text):
            self.count("stock")
            return self.state.timed(
                lambda: self.stock(attn, hidden_states, encoder_hidden_states, attention_mask,
                                   image_rotary_emb), hidden_states.device)
        self.count("stock" if dense else "radial")
        single_stream = attn.add_q_proj is None and encoder_hidden_states is not None
        if single_stream:
            hidden_states = torch.cat([hidden_states, encoder_hidden_states], dim=1)

        query, key, value = _project(attn.heads, hidden_states, attn.to_q, attn.to_k, attn.to_v,
                                     attn.norm_q, attn.norm_k)

        if image_rotary_emb is not None:
            from diffusers.models.embeddings import apply_rotary_emb

            # Rotary positions belong to the video tokens only.
            video = query.shape[1] - text if single_stream else query.shape[1]
            query = torch.cat([apply_rotary_emb(query[:, :video], image_rotary_emb, sequence_dim=1),
                               query[:, video:]], dim=1)
            key = torch.cat([apply_rotary_emb(key[:, :video], image_rotary_emb, sequence_dim=1),
                             key[:, video:]], dim=1)

        if attn.add_q_proj is not None and encoder_hidden_states is not None:
            eq, ek, ev = _project(attn.heads, encoder_hidden_states, attn.add_q_proj,
                                  attn.add_k_proj, attn.add_v_proj, attn.norm_added_q,
                                  attn.norm_added_k)
            query = torch.cat([query, eq], dim=1)
            key = torch.cat([key, ek], dim=1)
            value = torch.cat([value, ev], dim=1)

        if dense:  # under context parallelism: the text stays whole on every rank
            out = self.attend_dense_parallel(query, key, value, text, attention_mask)
        else:
            out = self._attend_batch(query, key, value, text,
                                     valid if attention_mask is not None else None)
        out = out.flatten(2, 3).to(query.dtype)

        if encoder_hidden_states is None:
            return out, encoder_hidden_states
        out, context = out[:, :-text], out[:, -text:]
        if getattr(attn, "to_out", None) is not None:
            out = attn.to_out[0](out)
            out = attn.to_out[1](out)
        if getattr(attn, "to_add_out", None) is not None:
            context = attn.to_add_out(context)
        return out, context

    def _attend_batch(self, query, key, value, text, valid):
        """One call when every batch element has the same valid text length (the usual
        case); otherwise one per element, each with its own plan."""
        if valid is None or len(set(valid)) == 1:
            v = -1 if valid is None or valid[0] >= text else valid[0]
            return self.attend(query, key, value, text, v, parallel=True)
        parts = [self.attend(query[i:i + 1], key[i:i + 1], value[i:i + 1], text,
                             -1 if valid[i] >= text else valid[i], parallel=True)
                 for i in range(query.shape[0])]
        return torch.cat(parts, dim=0)


def _project(heads, x, to_q, to_k, to_v, norm_q, norm_k):
    """Query, key and value of one stream as [B, S, heads, D], queries and keys normalised
    where the block has norms."""
    query, key, value = (proj(x).unflatten(2, (heads, -1)) for proj in (to_q, to_k, to_v))
    if norm_q is not None:
        query = norm_q(query)
    if norm_k is not None:
        key = norm_k(key)
    return query, key, value


def self_attentions(transformer):
    """(layer index, attention module): double-stream blocks first, then single-stream,
    the order in which they run; dense_layers counts in this order."""
    blocks = list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)
    return [(i, block.attn) for i, block in enumerate(blocks)]


def latent_geometry(transformer, hidden_states):
    _, _, frames, height, width = hidden_states.shape
    p, p_t = transformer.config.patch_size, transformer.config.patch_size_t
    return frames // p_t, (height // p) * (width // p)


def text_valid(encoder_attention_mask):
    """Valid text tokens per batch element (the stock model treats the mask as a prefix)."""
    return [int(n) for n in encoder_attention_mask.sum(dim=1).tolist()]


def preset(transformer) -> str:
    """HunyuanVideo-I2V is the HunyuanVideo transformer with an image_condition_type."""
    return "hunyuan-i2v" if getattr(transformer.config, "image_condition_type", None) else "hunyuan"
