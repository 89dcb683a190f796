#!/usr/bin/env python3
"""PyTorch reference for bench/train_step_bench: the same Llama training step (forward,
backward, AdamW) on the CPU. Prints one JSON line: tokens_per_s and step_s of the fastest
step, and the thread settings.

Thread settings are arguments so the bench states them: --torch-threads sets
torch.set_num_threads (intra-op OpenMP); OpenBLAS's own threads come from OPENBLAS_NUM_THREADS.
"""
import argparse
import json
import math
import os
import time

import torch


def parse():
    p = argparse.ArgumentParser()
    for name, default in [("dim", 256), ("layers", 4), ("heads", 8), ("kv_heads", 4),
                          ("ffn", 768), ("vocab", 4096), ("seq", 256), ("batch", 8),
                          ("steps", 5), ("torch_threads", 1)]:
        p.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    return p.parse_args()


class Layer(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        hs = a.dim // a.heads
        self.a, self.hs = a, hs
        self.attn_norm = torch.nn.Parameter(torch.ones(a.dim))
        self.mlp_norm = torch.nn.Parameter(torch.ones(a.dim))
        self.q = torch.nn.Linear(a.dim, a.heads * hs, bias=False)
        self.k = torch.nn.Linear(a.dim, a.kv_heads * hs, bias=False)
        self.v = torch.nn.Linear(a.dim, a.kv_heads * hs, bias=False)
        self.o = torch.nn.Linear(a.heads * hs, a.dim, bias=False)
        self.gate = torch.nn.Linear(a.dim, a.ffn, bias=False)
        self.up = torch.nn.Linear(a.dim, a.ffn, bias=False)
        self.down = torch.nn.Linear(a.ffn, a.dim, bias=False)

    @staticmethod
    def norm(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * w

    def forward(self, x, cos, sin):
        a, hs = self.a, self.hs
        b, t, _ = x.shape
        h = self.norm(x, self.attn_norm)
        q = self.q(h).view(b, t, a.heads, hs).transpose(1, 2)
        k = self.k(h).view(b, t, a.kv_heads, hs).transpose(1, 2)
        v = self.v(h).view(b, t, a.kv_heads, hs).transpose(1, 2)

        def rot(z):
            half = hs // 2
            return z * cos + torch.cat((-z[..., half:], z[..., :half]), -1) * sin

        q, k = rot(q), rot(k)
        k = k.repeat_interleave(a.heads // a.kv_heads, 1)
        v = v.repeat_interleave(a.heads // a.kv_heads, 1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        mask = torch.triu(torch.ones(t, t, dtype=torch.bool), 1)
        probs = torch.softmax(scores.masked_fill(mask, float("-inf")), -1)
        x = x + self.o((probs @ v).transpose(1, 2).reshape(b, t, -1))
        h = self.norm(x, self.mlp_norm)
        return x + self.down(torch.nn.functional.silu(self.gate(h)) * self.up(h))


class Model(torch.nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embed = torch.nn.Embedding(a.vocab, a.dim)
        self.layers = torch.nn.ModuleList(Layer(a) for _ in range(a.layers))
        self.norm = torch.nn.Parameter(torch.ones(a.dim))
        self.head = torch.nn.Linear(a.dim, a.vocab, bias=False)
        hs = a.dim // a.heads
        inv = 1.0 / (10000 ** (torch.arange(0, hs, 2).float() / hs))
        ang = torch.arange(a.seq).float()[:, None] * inv
        emb = torch.cat((ang, ang), -1)
        self.cos, self.sin = emb.cos(), emb.sin()

    def forward(self, tokens):
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        return self.head(Layer.norm(x, self.norm))


def main():
    a = parse()
    torch.set_num_threads(a.torch_threads)
    torch.manual_seed(0)
    model = Model(a)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.0)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, a.vocab),
                                                 tokens[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step()  # warm-up, kept out of the measurement
    # The fastest step: on a shared machine the least disturbed one (the C++ side does the same).
    elapsed = float("inf")
    for _ in range(a.steps):
        start = time.perf_counter()
        step()
        elapsed = min(elapsed, time.perf_counter() - start)
    print(json.dumps({"tokens_per_s": a.batch * a.seq / elapsed, "step_s": elapsed,
                      "torch_threads": torch.get_num_threads(),
                      "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
                      "torch_version": torch.__version__}))


if __name__ == "__main__":
    main()
