"""Model steps that follow the contract's signature but not its spirit, for the checks that must catch them."""

import numpy as np
import torch


class RepeatingCodes(torch.nn.Module):
    """Half catalog-unaware: 25 codes of real items (13 items, most of them twice), then 25 codes that are
    no item. Its answers must still reach clients as distinct catalog items."""

    def __init__(self, catalog_codes: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("real", torch.from_numpy(catalog_codes[:13]).repeat(2, 1)[:25].clone())
        self.register_buffer("unknown", torch.full((25, 3), 1023, dtype=torch.int64))

    def forward(self, l1, l2, l3, positions, token_types, mask):  # noqa: ANN001, ANN201 - the step contract
        codes = torch.cat([self.real, self.unknown]).expand(l1.shape[0], 50, 3)
        scores = torch.linspace(0.0, -5.0, 50).expand(l1.shape[0], 50) + mask.sum() * 0
        return codes.contiguous(), scores.contiguous()
