"""The part every radial processor shares: when to defer to the stock processor, and the
attention call itself (directly, or inside diffusers' Ulysses context parallelism)."""

import torch

from .._errors import invalid
from ..ops import attention
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
        # use_stock() reads this bool rather than the layer index: torch.compile specialises
        # on the ints it reads, so a compiled block (one graph reused by every block) would
        # recompile for each layer index; a bool gives two graphs, dense and radial.
        self.dense_layer = layer < state.settings.dense_layers

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
        return (s.pattern == "stock" or self.dense_layer or self.state.warmup
                or self.state.geometry is None)

    def count(self, kind: str) -> None:
        if not compiling():
            self.state.calls[kind] += 1

    def attend(self, query, key, value, text_tokens: int, text_valid: int, parallel: bool):
        """Block-sparse attention of [batch, seq, heads, dim] tensors under the plan of the
        current geometry; under Ulysses context parallelism, of this rank's heads over the
        whole sequence (radial_attention.parallel's exchange puts it together)."""
        frames, tokens_per_frame = self.state.geometry
        s = self.state.settings
        plan_key = PlanKey(frames, tokens_per_frame, text_tokens, text_valid, s.model, s.pattern,
                           s.decay_factor, s.block_size, s.decay_adjacent)

        def run(q, k, v):
            # attention() keeps lse when a gradient may follow (training), for the backward.
            return attention(q, k, v, plan_key, precision=s.precision)

        config = self.context_parallel() if parallel else None
        if config is None:
            return self.state.timed(lambda: run(query, key, value), query.device)
        return self.state.timed(
            lambda: _ulysses(query, key, value, config, run, frames * tokens_per_frame, text_tokens),
            query.device)

    def context_parallel(self):
        """diffusers' ParallelConfig when its context parallelism splits the sequence, else None."""
        config = self._parallel_config
        cp = getattr(config, "context_parallel_config", None) if config is not None else None
        if cp is None or (getattr(cp, "ulysses_degree", 1) or 1) * (getattr(cp, "ring_degree", 1) or 1) == 1:
            return None
        return config

    def attend_dense_parallel(self, query, key, value, text_tokens: int, attention_mask):
        """Dense attention of a joint (video + text) sequence under context parallelism,
        through diffusers' attention backend and our exchange. diffusers' own Ulysses would
        exchange every rank's copy of the text, so each text key would count once per rank
        against each video key once: the text stays replicated here instead."""
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        frames, tokens_per_frame = self.state.geometry
        video = frames * tokens_per_frame
        mask = None
        if attention_mask is not None:  # [B, 1, 1, local + text]: keep the text part
            text_mask = attention_mask[..., attention_mask.shape[-1] - text_tokens:]
            mask = torch.cat([text_mask.new_ones(text_mask.shape[:-1] + (video,)), text_mask], -1)

        def run(q, k, v):
            return dispatch_attention_fn(q, k, v, attn_mask=mask, dropout_p=0.0, is_causal=False,
                                         backend=self._attention_backend)

        return self.state.timed(
            lambda: _ulysses(query, key, value, self.context_parallel(), run, video, text_tokens),
            query.device)


def _ulysses(query, key, value, config, run, video_tokens=0, text_tokens=0):
    """Our Ulysses exchange (radial_attention.parallel) over diffusers' Ulysses group: each
    rank holds its shard of the video tokens (torch.tensor_split's, which is also diffusers'
    even split), then every text token; text tokens are replicated, never sharded."""
    cp = config.context_parallel_config
    ring = getattr(cp, "ring_degree", 1) or 1
    if ring > 1:
        raise invalid("context_parallel_config.ring_degree",
                      "1 (radial attention works with Ulysses parallelism, where each rank sees "
                      "the whole sequence for its heads; ring attention splits the keys)", ring)
    from ..parallel import tensor_split_sizes, ulysses_apply

    group = cp._ulysses_mesh.get_group()
    world = torch.distributed.get_world_size(group)
    return ulysses_apply(run, query, key, value, video_tokens=video_tokens,
                         text_tokens=text_tokens, group=group,
                         shard_sizes=tensor_split_sizes(video_tokens, world))
