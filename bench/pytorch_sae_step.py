"""PyTorch CPU baseline for BENCHMARKS.md: one SAE training step (forward, SAELens loss,
autograd backward, global grad-norm clip 1.0, Adam) per architecture, on the same shapes as
`deno task bench sae`. Not part of the test suite. Needs Debian's python3-torch and
libopenblas0-pthread (without it torch links the reference BLAS, about 15x slower):

    apt-get install python3-torch libopenblas0-pthread
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/pytorch_sae_step.py \
      [--small] [--arch standard,topk,...] [--device cpu|cuda|auto]

`--device auto` (what `deno task gpu-check --pytorch python3` passes) uses CUDA when torch sees a
GPU; on CUDA each timed step ends with `torch.cuda.synchronize()`.

Prints one JSON line per architecture (tokens/s of the fastest timed step), like the Deno bench.
The losses follow spec/saelens.md section 3 at the level that decides the cost (the same GEMMs and
reductions); the TopK family decodes densely, as SAELens does by default.
"""

import argparse
import json
import os
import time

import torch

torch.set_num_threads(os.cpu_count() or 1)


def make_params(d_in, d_sae, arch, device="cpu"):
    w_dec = torch.randn(d_sae, d_in)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True) * 0.1
    p = {
        "W_dec": w_dec,
        "W_enc": w_dec.t().clone(),
        "b_enc": torch.zeros(d_sae),
        "b_dec": torch.zeros(d_in),
    }
    if arch == "gated":
        p["b_gate"] = p.pop("b_enc")
        p["r_mag"] = torch.zeros(d_sae)
        p["b_mag"] = torch.zeros(d_sae)
    if arch == "jumprelu":
        p["log_threshold"] = torch.full((d_sae,), float(torch.log(torch.tensor(0.001))))
    return {k: v.to(device).requires_grad_() for k, v in p.items()}


class StepSTE(torch.autograd.Function):
    """Heaviside step of (x - threshold) with SAELens's rectangle-kernel pseudo-gradient."""

    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        rect = ((x - threshold).abs() < bw / 2).to(x.dtype)
        return None, (-(1.0 / bw) * rect * grad).sum(0), None


class JumpReLUSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, threshold, bandwidth):
        ctx.save_for_backward(x, threshold)
        ctx.bandwidth = bandwidth
        return x * (x > threshold).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        x, threshold = ctx.saved_tensors
        bw = ctx.bandwidth
        rect = ((x - threshold).abs() < bw / 2).to(x.dtype)
        return (x > threshold).to(x.dtype) * grad, (-(threshold / bw) * rect * grad).sum(0), None


def topk_acts(hidden_pre, k):
    vals, idx = hidden_pre.topk(k, dim=-1)
    return torch.zeros_like(hidden_pre).scatter(-1, idx, vals.relu())


def batch_topk_acts(hidden_pre, k):
    acts = hidden_pre.relu()
    flat = acts.flatten()
    vals, idx = flat.topk(k * hidden_pre.shape[0])
    return torch.zeros_like(flat).scatter(-1, idx, vals).reshape(acts.shape)


def loss_fn(p, x, arch, k):
    mse = lambda r: (r - x).pow(2).sum(-1).mean()  # noqa: E731
    dec_norm = p["W_dec"].norm(dim=1)
    if arch == "gated":
        x_c = x - p["b_dec"]
        pi_gate = x_c @ p["W_enc"] + p["b_gate"]
        pi_mag = x_c @ (p["W_enc"] * p["r_mag"].exp()) + p["b_mag"]
        acts = (pi_gate > 0).to(x.dtype) * pi_mag.relu()
        recon = acts @ p["W_dec"] + p["b_dec"]
        gate = pi_gate.relu()
        aux = gate @ p["W_dec"].detach() + p["b_dec"].detach()
        return mse(recon) + 5.0 * (gate * dec_norm).sum(-1).mean() + mse(aux)
    hidden_pre = (x - p["b_dec"]) @ p["W_enc"] + p["b_enc"]
    if arch == "standard":
        acts = hidden_pre.relu()
        return mse(acts @ p["W_dec"] + p["b_dec"]) + 5.0 * (acts * dec_norm).sum(-1).mean()
    if arch == "jumprelu":
        threshold = p["log_threshold"].exp()
        acts = JumpReLUSTE.apply(hidden_pre, threshold, 0.001)
        l0 = StepSTE.apply(hidden_pre, threshold, 0.001).sum(-1).mean()
        pre_act = (threshold - hidden_pre).relu() * dec_norm
        return mse(acts @ p["W_dec"] + p["b_dec"]) + 1.0 * l0 + 0.0 * pre_act.sum(-1).mean()
    if arch == "topk":
        acts = topk_acts(hidden_pre, k)
        return mse(acts @ p["W_dec"] + p["b_dec"])
    if arch == "batchtopk":
        acts = batch_topk_acts(hidden_pre, k)
        return mse(acts @ p["W_dec"] + p["b_dec"])
    if arch == "matryoshka_batchtopk":
        acts = batch_topk_acts(hidden_pre, k)
        d_sae = acts.shape[1]
        loss = 0.0
        for width in (d_sae // 8, d_sae // 4, d_sae // 2, d_sae):
            loss = loss + mse(acts[:, :width] @ p["W_dec"][:width] + p["b_dec"])
        return loss
    raise ValueError(f"unknown architecture {arch}")


def bench(arch, batch, d_in, d_sae, k, warmup, iters, device="cpu"):
    torch.manual_seed(0)
    p = make_params(d_in, d_sae, arch, device)
    opt = torch.optim.Adam(p.values(), lr=3e-4, betas=(0.9, 0.999))
    x = torch.randn(batch, d_in).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(p, x, arch, k).backward()
        torch.nn.utils.clip_grad_norm_(p.values(), 1.0)
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t0)
    return {
        "name": f"pytorch_sae_step_{arch}_{batch}x{d_in}x{d_sae}",
        "architecture": arch,
        "batch": batch,
        "d_in": d_in,
        "d_sae": d_sae,
        "k": k if "topk" in arch else None,
        "value": batch / best,
        "unit": "tokens/s",
        "ms": best * 1e3,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", action="store_true")
    ap.add_argument(
        "--arch",
        default="standard,gated,jumprelu,topk,batchtopk,matryoshka_batchtopk",
    )
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = ap.parse_args()
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    batch, d_in, d_sae = (512, 128, 1024) if args.small else (4096, 768, 6144)
    iters = 5 if args.small or device == "cuda" else 2
    for arch in args.arch.split(","):
        print(json.dumps(bench(arch, batch, d_in, d_sae, 32, 1, iters, device)), flush=True)


if __name__ == "__main__":
    main()
