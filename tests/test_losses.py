"""NT-Xent against a direct, loop-by-loop computation of SimCLR's eq. (1)."""
import math

import torch

from sslnb.losses import nt_xent


def nt_xent_direct(z1, z2, tau):
    """The paper's definition, written as literally as possible: views 2k and 2k+1 are a pair."""
    z = []
    for a, b in zip(z1, z2):
        z += [a, b]
    n2 = len(z)
    sim = [[float(torch.dot(z[i], z[j]) / (z[i].norm() * z[j].norm())) for j in range(n2)]
           for i in range(n2)]
    total = 0.0
    for i in range(n2):
        j = i + 1 if i % 2 == 0 else i - 1
        denom = sum(math.exp(sim[i][k] / tau) for k in range(n2) if k != i)
        total += -math.log(math.exp(sim[i][j] / tau) / denom)
    return total / n2


def test_matches_paper_formula():
    g = torch.Generator().manual_seed(0)
    for n, d, tau in [(2, 3, 0.5), (5, 8, 0.1), (8, 16, 1.0)]:
        z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        assert abs(nt_xent(z1, z2, tau).item() - nt_xent_direct(z1, z2, tau)) < 1e-5


def test_ignores_scale_of_z():
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    scales = torch.rand(6, 1, generator=g) * 10 + 0.1
    assert torch.allclose(nt_xent(z1, z2), nt_xent(z1 * scales, z2 * 3.0), atol=1e-6)


def test_gradient_matches_autograd_of_direct_formula():
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    nt_xent(z1, z2, 0.3).backward()
    got = torch.cat([z1.grad, z2.grad]).clone()

    a = z1.detach().clone().requires_grad_()
    b = z2.detach().clone().requires_grad_()
    za, zb = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    z = torch.stack([za, zb], dim=1).reshape(8, 5)  # interleaved pairs, as in the paper
    terms = []
    for i in range(8):
        j = i ^ 1
        logits = torch.stack([z[i] @ z[k] / 0.3 for k in range(8) if k != i])
        pos = z[i] @ z[j] / 0.3
        terms.append(-(pos - torch.logsumexp(logits, dim=0)))
    torch.stack(terms).mean().backward()
    want = torch.cat([a.grad, b.grad])
    assert torch.allclose(got.to(want.dtype), want, atol=1e-6)


def test_perfectly_aligned_views_give_lower_loss_than_random():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(16, 32, generator=g)
    assert nt_xent(z, z, 0.1) < nt_xent(z, torch.randn(16, 32, generator=g), 0.1)
