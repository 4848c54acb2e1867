"""Check, on a CUDA GPU, the CUDA-only claims notebook 08 quotes from PyTorch's documentation.

    python tools/check_cuda_claims.py

Not part of the test suite (the course's machines have no GPU). Without CUDA
it prints why it skipped and exits 0. With CUDA it checks each claim, prints
one line per claim, and exits 1 if any claim did not hold.

The claims (PyTorch's "Automatic Mixed Precision package - torch.amp" page):
1. "binary_cross_entropy and BCELoss raise an error in autocast-enabled
   regions" (section "Prefer binary_cross_entropy_with_logits over
   binary_cross_entropy", under "CUDA Op-Specific Behavior");
2. `binary_cross_entropy_with_logits` and `BCEWithLogitsLoss` "are safe to
   autocast" (same section): they run, and give a float32 loss;
and what notebook 08 shows on the CPU, here on CUDA:
3. under float16 autocast a linear layer's output is float16 and MSELoss is float32;
4. a GradScaler("cuda") step whose gradients hold inf is skipped, and update() halves the scale.
"""

from __future__ import annotations

import sys

import torch
from torch import nn


def bce_loss_raises() -> tuple[bool, str]:
    logits = torch.randn(8, device="cuda")
    target = torch.rand(8, device="cuda").round()
    with torch.autocast("cuda", dtype=torch.float16):
        try:
            nn.BCELoss()(torch.sigmoid(logits.half()), target)
        except RuntimeError as error:
            return True, f"BCELoss under CUDA autocast raised: {str(error).splitlines()[0][:120]}"
    return False, "BCELoss under CUDA autocast did not raise"


def bce_with_logits_is_safe() -> tuple[bool, str]:
    layer = nn.Linear(4, 1).cuda()
    x, target = torch.randn(8, 4, device="cuda"), torch.rand(8, device="cuda").round()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = nn.BCEWithLogitsLoss()(layer(x).squeeze(-1), target)
    loss.backward()
    ok = loss.dtype == torch.float32 and torch.isfinite(layer.weight.grad).all().item()
    return bool(ok), f"BCEWithLogitsLoss under CUDA autocast: loss {loss.dtype}, finite gradient: {ok}"


def autocast_dtypes() -> tuple[bool, str]:
    layer = nn.Linear(4, 1).cuda()
    with torch.autocast("cuda", dtype=torch.float16):
        out = layer(torch.randn(8, 4, device="cuda")).squeeze(-1)
        loss = nn.MSELoss()(out, torch.randn(8, device="cuda"))
    ok = out.dtype == torch.float16 and loss.dtype == torch.float32
    return ok, f"CUDA float16 autocast: linear output {out.dtype}, MSELoss {loss.dtype}"


def scaler_skips_and_backs_off() -> tuple[bool, str]:
    layer = nn.Linear(4, 1).cuda()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cuda")
    before = layer.weight.detach().clone()
    with torch.autocast("cuda", dtype=torch.float16):
        loss = layer(torch.randn(8, 4, device="cuda")).pow(2).mean()
    scaler.scale(loss).backward()
    layer.weight.grad[0, 0] = float("inf")
    scale = scaler.get_scale()
    scaler.step(optimizer)
    scaler.update()
    ok = torch.equal(before, layer.weight) and scaler.get_scale() == scale / 2
    return ok, f"GradScaler('cuda'), an inf gradient: step skipped: {torch.equal(before, layer.weight)}, " + (
        f"scale {scale:.0f} -> {scaler.get_scale():.0f}"
    )


def main() -> int:
    if not torch.cuda.is_available():
        print("skipped: no CUDA device here (torch.cuda.is_available() is False); run this on a machine with a GPU")
        return 0
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
    failed = 0
    for claim in (bce_loss_raises, bce_with_logits_is_safe, autocast_dtypes, scaler_skips_and_backs_off):
        ok, what = claim()
        print(f"{'holds ' if ok else 'FAILED'}  {what}")
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
