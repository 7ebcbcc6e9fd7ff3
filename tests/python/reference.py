"""An attention reference independent of the library's kernels: the plan's CSR expanded to a
token mask by hand, then float64 softmax attention in plain torch."""

import torch


def token_mask(plan):
    offsets, columns = plan.csr()
    b = plan.block_size
    mask = torch.zeros(plan.seq_len, plan.seq_len, dtype=torch.bool)
    for row in range(plan.block_rows):
        for c in columns[offsets[row]:offsets[row + 1]].tolist():
            mask[row * b:(row + 1) * b, c * b:(c + 1) * b] = True
    mask[:, plan.key_limit:] = False  # padded text keys
    return mask


def attention(q, k, v, mask, scale=None):
    """q, k, v: [batch, seq, heads, dim]; returns (out [B, S, H, D], lse [B, H, S]) in float64."""
    q, k, v = (t.to(torch.float64) for t in (q, k, v))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    scores = scores.masked_fill(~mask, float("-inf"))
    lse = torch.logsumexp(scores, dim=-1)
    probs = torch.exp(scores - lse[..., None])
    return torch.einsum("bhqk,bkhd->bqhd", probs, v), lse
