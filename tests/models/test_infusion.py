"""The infusion block: an identity start, attention rows that sum to one, and keys hidden on request."""

from __future__ import annotations

import torch

from kgnet.models.infusion import InfusionBlock, masking_keys


def test_an_identity_start_passes_the_tokens_through_and_masked_keys_get_no_attention() -> None:
    torch.manual_seed(0)
    block = InfusionBlock(token_dim=8, node_dim=6, attn_dim=8, heads=2, dropout=0.0, identity_start=True).eval()
    tokens, nodes = torch.randn(2, 5, 8), torch.randn(7, 6)
    with torch.no_grad():
        fused, attention = block(tokens, nodes)
    torch.testing.assert_close(fused, tokens, rtol=0, atol=0)  # both residual branches start at zero
    assert attention.shape == (2, 2, 5, 7)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 2, 5))
    with masking_keys([block], [4]), torch.no_grad():
        _, masked = block(tokens, nodes)
    assert float(masked[..., 4].max()) == 0.0
    torch.testing.assert_close(masked.sum(-1), torch.ones(2, 2, 5))  # renormalised over the others
    with masking_keys([block], range(7)), torch.no_grad():
        _, hidden = block(tokens, nodes)
    assert float(hidden.abs().max()) == 0.0  # nothing to attend
    assert block.masked_keys is None  # restored on leaving
    with torch.no_grad():
        block.reset_parameters()
        assert float(block.out.weight.abs().max()) == 0.0 and float(block.query.weight.abs().max()) > 0
    moving = InfusionBlock(token_dim=8, node_dim=6, attn_dim=8, heads=2, dropout=0.0).eval()
    with torch.no_grad():
        assert not torch.allclose(moving(tokens, nodes)[0], tokens)
