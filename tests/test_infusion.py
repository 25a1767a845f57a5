"""The infusion block's experimental concept-group pooling (issue 13): what it returns and hides."""

from __future__ import annotations

import torch

from kgnet.models.infusion import InfusionBlock, masking_keys


def test_grouped_infusion_attends_over_groups_and_hides_masked_nodes() -> None:
    torch.manual_seed(0)
    block = InfusionBlock(token_dim=8, node_dim=6, attn_dim=8, heads=2, dropout=0.0, groups=3).eval()
    tokens, nodes = torch.randn(2, 5, 8), torch.randn(7, 6)
    with torch.no_grad():
        fused, attention = block(tokens, nodes)
    assert fused.shape == (2, 5, 8) and attention.shape == (2, 2, 5, 3)  # over the 3 groups, not the 7 nodes
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 2, 5))
    assignment = block.group_assignment
    assert assignment.shape == (3, 7)
    torch.testing.assert_close(assignment.sum(-1), torch.ones(3))
    with masking_keys([block], [4]), torch.no_grad():
        masked, _ = block(tokens, nodes)
    assert float(block.group_assignment[:, 4].max()) == 0.0  # a hidden node is in no group
    assert not torch.allclose(masked, fused)
