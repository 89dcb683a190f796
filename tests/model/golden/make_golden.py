#!/usr/bin/env python3
"""Golden values for the Llama model from an independent PyTorch implementation.

Builds the tiny model of tests/model/golden_test.cc (2 layers, C=16, NH=4, KVH=2, F=24, V=11,
Hugging Face rotate-half RoPE, RMSNorm, SwiGLU, untied LM head, attribute head with bias) in
float64, runs it on a batch with one padded row and one row of two packed sequences, and writes
inputs, weights (float32-representable), logits, losses and gradients for both heads to
golden.json. Regenerate with Debian's PyTorch:

    /usr/bin/python3 tests/model/golden/make_golden.py
"""
import json
import math
import os

import torch

torch.manual_seed(20240601)
DTYPE = torch.float64
C, L, NH, KVH, F, V, A = 16, 2, 4, 2, 24, 11, 3
HS = C // NH
THETA, EPS = 10000.0, 1e-5

# Row 0: one sequence of 4 tokens + 2 padding; row 1: packed sequences of 3 and 3 tokens.
TOKENS = [[3, 7, 1, 9, 0, 0], [4, 4, 10, 2, 5, 8]]
POSITIONS = [[0, 1, 2, 3, 0, 0], [0, 1, 2, 0, 1, 2]]
SEGMENTS = [[1, 1, 1, 1, 0, 0], [1, 1, 1, 2, 2, 2]]
TARGETS = [[7, 1, 9, 6, 0, 0], [4, 10, 3, 5, 8, 1]]
LOSS_MASK = [[0, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 1]]
ATTRIBUTE_TARGETS = [[1.0, -100.0, 3.0], [0.5, 2.0, 4.0], [-100.0, 1.0, 2.0]]


def parameter_shapes():
    shapes = {"model.embed_tokens.weight": (V, C)}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "self_attn.q_proj.weight"] = (NH * HS, C)
        shapes[p + "self_attn.k_proj.weight"] = (KVH * HS, C)
        shapes[p + "self_attn.v_proj.weight"] = (KVH * HS, C)
        shapes[p + "self_attn.o_proj.weight"] = (C, NH * HS)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (F, C)
        shapes[p + "mlp.up_proj.weight"] = (F, C)
        shapes[p + "mlp.down_proj.weight"] = (C, F)
    shapes["model.norm.weight"] = (C,)
    shapes["lm_head.weight"] = (V, C)
    shapes["attribute_head.weight"] = (A, C)
    shapes["attribute_head.bias"] = (A,)
    return shapes


def make_weights():
    weights = {}
    for name, shape in parameter_shapes().items():
        if name.endswith("layernorm.weight") or name == "model.norm.weight":
            value = 1.0 + 0.1 * torch.randn(shape)
        else:
            value = 0.3 * torch.randn(shape)
        # float32-representable, so the C++ side loads them exactly.
        weights[name] = value.float().to(DTYPE).requires_grad_(True)
    return weights


def rms_norm(x, weight):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rope(x, positions):  # x (B, H, T, HS), positions (B, T)
    inv_freq = 1.0 / (THETA ** (torch.arange(0, HS, 2, dtype=DTYPE) / HS))
    angles = positions.to(DTYPE)[..., None] * inv_freq  # (B, T, HS/2)
    emb = torch.cat((angles, angles), dim=-1)[:, None]  # (B, 1, T, HS)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def attention_mask(segments):  # True where query t may attend key s
    seg = torch.tensor(segments)
    t = seg.shape[1]
    causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
    same = (seg[:, :, None] == seg[:, None, :]) & (seg[:, :, None] != 0)
    return same & causal  # (B, T, T)


def trunk(w, tokens, positions, segments):
    b, t = tokens.shape
    x = w["model.embed_tokens.weight"][tokens]
    allowed = attention_mask(segments)[:, None]  # (B, 1, T, T)
    has_key = allowed.any(-1, keepdim=True)
    for i in range(L):
        p = f"model.layers.{i}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(b, t, NH, HS).transpose(1, 2)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(b, t, KVH, HS).transpose(1, 2)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(b, t, KVH, HS).transpose(1, 2)
        q, k = rope(q, positions), rope(k, positions)
        k = k.repeat_interleave(NH // KVH, dim=1)
        v = v.repeat_interleave(NH // KVH, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(HS)
        scores = scores.masked_fill(~allowed, float("-inf"))
        # Padding queries attend to nothing: their output is zero (softmax would be NaN).
        probs = torch.where(has_key, torch.softmax(scores.masked_fill(~has_key, 0.0), -1),
                            torch.zeros_like(scores))
        attn = (probs @ v).transpose(1, 2).reshape(b, t, NH * HS)
        x = x + attn @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(x, w["model.norm.weight"])


def sequence_ends(segments):
    ends = []
    for row, seg in enumerate(segments):
        for t in range(len(seg)):
            if seg[t] != 0 and (t + 1 == len(seg) or seg[t + 1] != seg[t]):
                ends.append((row, t))
    return ends


def flat(t):
    return [float(f"{v:.10g}") for v in t.detach().reshape(-1).tolist()]


def main():
    w = make_weights()
    tokens, positions = torch.tensor(TOKENS), torch.tensor(POSITIONS)
    lm_names = [n for n in w if not n.startswith("attribute_head")]
    attr_names = [n for n in w if n != "lm_head.weight"]

    # LM head: summed masked cross-entropy and its gradients.
    hidden = trunk(w, tokens, positions, SEGMENTS)
    logits = hidden @ w["lm_head.weight"].T
    token_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, V), torch.tensor(TARGETS).reshape(-1), reduction="none")
    lm_loss = (token_loss * torch.tensor(LOSS_MASK, dtype=DTYPE).reshape(-1)).sum()
    lm_grads = torch.autograd.grad(lm_loss, [w[n] for n in lm_names])

    # Attribute head: per-sequence masked MSE, summed.
    hidden = trunk(w, tokens, positions, SEGMENTS)
    ends = sequence_ends(SEGMENTS)
    readout = torch.stack([hidden[r, t] for r, t in ends])
    predictions = readout @ w["attribute_head.weight"].T + w["attribute_head.bias"]
    targets = torch.tensor(ATTRIBUTE_TARGETS, dtype=DTYPE)
    present = targets != -100
    squared = torch.where(present, (predictions - targets) ** 2, torch.zeros_like(predictions))
    attr_loss = (squared.sum(-1) / present.sum(-1)).sum()
    attr_grads = torch.autograd.grad(attr_loss, [w[n] for n in attr_names])

    golden = {
        "config": {"dim": C, "n_layers": L, "n_heads": NH, "n_kv_heads": KVH, "ffn_hidden": F,
                   "vocab_size": V, "rope_theta": THETA, "norm_eps": EPS, "n_attributes": A},
        "tokens": TOKENS, "positions": POSITIONS, "segments": SEGMENTS, "targets": TARGETS,
        "loss_mask": LOSS_MASK, "attribute_targets": ATTRIBUTE_TARGETS,
        "weights": {n: flat(w[n]) for n in w},
        "logits": flat(logits), "lm_loss_sum": lm_loss.item(),
        "lm_grads": {n: flat(g) for n, g in zip(lm_names, lm_grads)},
        "attribute_predictions": flat(predictions), "attribute_loss_sum": attr_loss.item(),
        "attribute_grads": {n: flat(g) for n, g in zip(attr_names, attr_grads)},
        "torch_version": torch.__version__,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden.json")
    with open(path, "w") as out:
        json.dump(golden, out, separators=(",", ":"))
        out.write("\n")
    print(f"wrote {path}: lm loss {lm_loss.item():.6f}, attribute loss {attr_loss.item():.6f}")


if __name__ == "__main__":
    main()
