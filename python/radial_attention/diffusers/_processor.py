"""The part every radial processor shares: when to defer to the stock processor, and the
attention call itself (directly, or inside diffusers' Ulysses context parallelism)."""

from .._errors import invalid
from ..ops import attention, attention_gradients
from ..plan import PlanKey
from ._state import State, compiling


class RadialProcessorBase:
    """Wraps the stock processor of one self-attention. Dense layers, warm-up steps and
    ``pattern="stock"`` call the stock processor unchanged, so they match stock diffusers
    exactly and keep its attention backend (flash, cuDNN, ...)."""

    def __init__(self, stock, layer: int, state: State):
        self.stock = stock
        self.layer = layer
        self.state = state

    # diffusers writes these on processors (set_attention_backend, enable_parallelism); they
    # belong to the stock processor, which runs the dense steps and layers.
    @property
    def _attention_backend(self):
        return getattr(self.stock, "_attention_backend", None)

    @_attention_backend.setter
    def _attention_backend(self, value):
        self.stock._attention_backend = value

    @property
    def _parallel_config(self):
        return getattr(self.stock, "_parallel_config", None)

    @_parallel_config.setter
    def _parallel_config(self, value):
        self.stock._parallel_config = value

    def use_stock(self) -> bool:
        s = self.state.settings
        return (s.pattern == "stock" or self.layer < s.dense_layers or self.state.warmup
                or self.state.geometry is None)

    def count(self, kind: str) -> None:
        if not compiling():
            self.state.calls[kind] += 1

    def attend(self, query, key, value, text_tokens: int, text_valid: int, parallel: bool):
        """Block-sparse attention of [batch, seq, heads, dim] tensors under the plan of the
        current geometry; under Ulysses context parallelism, of this rank's heads over the
        whole sequence (diffusers' all-to-all puts it together)."""
        frames, tokens_per_frame = self.state.geometry
        s = self.state.settings
        plan_key = PlanKey(frames, tokens_per_frame, text_tokens, text_valid, s.model, s.pattern,
                           s.decay_factor, s.block_size, s.decay_adjacent)

        def run(q, k, v, need_lse):
            # (out, lse); lse only when asked (a backward follows), else None.
            if need_lse:
                return attention(q, k, v, plan_key, return_lse=True)
            return attention(q, k, v, plan_key), None

        def backward(grad_out, q, k, v, out, lse):
            return attention_gradients(grad_out, q, k, v, out, lse, plan_key)

        config = self._parallel_config if parallel else None
        cp = getattr(config, "context_parallel_config", None) if config is not None else None
        if cp is None or (getattr(cp, "ulysses_degree", 1) or 1) * (getattr(cp, "ring_degree", 1) or 1) == 1:
            # attention() keeps lse when a gradient may follow (training), for the backward.
            return self.state.timed(lambda: attention(query, key, value, plan_key), query.device)
        return self.state.timed(lambda: _ulysses(query, key, value, config, run, backward),
                                query.device)


def _ulysses(query, key, value, config, run, backward):
    cp = config.context_parallel_config
    ring = getattr(cp, "ring_degree", 1) or 1
    if ring > 1:
        raise invalid("context_parallel_config.ring_degree",
                      "1 (radial attention works with Ulysses parallelism, where each rank sees "
                      "the whole sequence for its heads; ring attention splits the keys)", ring)
    from diffusers.models.attention_dispatch import _templated_context_parallel_attention

    # diffusers' autograd Function calls these between its all-to-alls: forward_op with grad
    # mode off, so lse is kept whenever it saves for a backward.
    def forward_op(ctx, q, k, v, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                   enable_gqa=False, return_lse=False, _save_ctx=True, _parallel_config=None):
        if return_lse:
            raise NotImplementedError("radial attention under context parallelism returns no lse")
        out, lse = run(q, k, v, _save_ctx)
        if _save_ctx:
            ctx.save_for_backward(q, k, v, out, lse)
        return out

    def backward_op(ctx, grad_out, *args, **kwargs):
        return backward(grad_out, *ctx.saved_tensors)

    return _templated_context_parallel_attention(
        query, key, value, None, 0.0, False, None, False, False,
        forward_op=forward_op, backward_op=backward_op, _parallel_config=config)
