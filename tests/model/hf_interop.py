#!/usr/bin/env python3
"""Hugging Face interoperability of steerlm checkpoints (issue 3).

1. stories260K (llama2.c) -> `steerlm convert` -> steerlm -> `steerlm convert --to hf`: the exported
   directory loads in transformers' LlamaForCausalLM.
2. A LlamaForCausalLM written by transformers (GQA, untied head, rope_theta 500000) ->
   `steerlm convert --from hf` -> steerlm.
For both, this script writes the transformers logits of fixed token sequences next to the steerlm
checkpoint, and the C++ test HfInterop.LogitsMatchTransformers (in model_tests) compares steerlm's
logits with them within 1e-4.

transformers comes from PyPI into a virtual environment under --work that reuses Debian's
python3-torch; when torch or the install is unavailable, the test is skipped (exit 77).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

SKIP = 77
TRANSFORMERS = "transformers>=4.36,<4.46"  # the range that still supports torch 1.13 (Debian 12)


def skip(message):
    print(f"SKIPPED: {message}", flush=True)
    sys.exit(SKIP)


def ensure_packages(work):
    """Re-executes this script in a venv with transformers unless it is importable already."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
        import safetensors  # noqa: F401
        return
    except ImportError:
        pass
    if os.environ.get("STEERLM_HF_VENV_ACTIVE"):
        skip("transformers/torch still not importable inside the virtual environment")
    try:
        import torch  # noqa: F401
    except ImportError:
        skip("torch is not importable (install Debian's python3-torch: launch/install_deps.sh)")
    venv = os.path.join(work, "venv")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        result = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", venv])
        if result.returncode != 0:
            skip("cannot create a virtual environment (python3-venv missing?)")
    result = subprocess.run([python, "-m", "pip", "install", "-q", TRANSFORMERS],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        skip(f"pip could not install {TRANSFORMERS}: {result.stdout.strip()[-400:]}")
    env = dict(os.environ, STEERLM_HF_VENV_ACTIVE="1")
    os.execve(python, [python] + sys.argv, env)


def run(command):
    print("+", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def hf_logits(directory, token_rows):
    """(rows, T, V) float64 logits of LlamaForCausalLM loaded from `directory`, as nested lists."""
    import torch
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(directory, torch_dtype=torch.float32)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(token_rows, dtype=torch.long)).logits
    return logits.double().tolist()


def exported_case(args, work):
    """llama2.c -> steerlm -> hf; transformers reads the export."""
    models = os.path.join(args.shared_data, "models", "stories260K")
    steerlm_dir = os.path.join(work, "stories_steerlm")
    hf_dir = os.path.join(work, "stories_hf")
    run([args.steerlm, "convert", "--from", "llama2c", "--input",
         os.path.join(models, "stories260K.bin"), "--tokenizer", os.path.join(models, "tok512.bin"),
         "--output", steerlm_dir])
    run([args.steerlm, "convert", "--from", "steerlm", "--to", "hf", "--input", steerlm_dir,
         "--output", hf_dir])
    tokens = [[1, 403, 407, 261, 378, 284, 261, 271, 9, 77, 300, 5]]
    return {"name": "steerlm export read by transformers", "steerlm_dir": steerlm_dir,
            "tokens": tokens, "logits": hf_logits(hf_dir, tokens)}


def transformers_case(args, work):
    """A checkpoint written by transformers, imported with `steerlm convert --from hf`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    config = LlamaConfig(hidden_size=48, intermediate_size=80, num_hidden_layers=2,
                         num_attention_heads=6, num_key_value_heads=2, vocab_size=512,
                         max_position_embeddings=128, rope_theta=500000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # larger than the default init, so attention and RoPE matter
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0.0, 0.2)
    hf_dir = os.path.join(work, "transformers_hf")
    shutil.rmtree(hf_dir, ignore_errors=True)
    model.save_pretrained(hf_dir, safe_serialization=True)
    shutil.copy(os.path.join(args.shared_data, "models", "stories260K", "tok512.bin"),
                os.path.join(hf_dir, "tokenizer.bin"))
    steerlm_dir = os.path.join(work, "transformers_steerlm")
    run([args.steerlm, "convert", "--from", "hf", "--input", hf_dir, "--output", steerlm_dir])
    tokens = [[1, 17, 300, 42, 511, 3, 99, 250, 7, 8, 100, 200, 64, 65, 66, 2],
              [1, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]]
    return {"name": "transformers checkpoint read by steerlm", "steerlm_dir": steerlm_dir,
            "tokens": tokens, "logits": hf_logits(hf_dir, tokens)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steerlm", required=True, help="the steerlm binary")
    parser.add_argument("--tests", required=True, help="the model_tests binary")
    parser.add_argument("--shared-data", required=True)
    parser.add_argument("--work", required=True, help="scratch directory (the venv is kept there)")
    args = parser.parse_args()
    if not os.path.exists(os.path.join(args.shared_data, "models", "stories260K")):
        skip(f"needs {args.shared_data}/models/stories260K")
    os.makedirs(args.work, exist_ok=True)
    ensure_packages(args.work)

    import torch
    import transformers
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    work = os.path.join(args.work, "cases")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    cases = [exported_case(args, work), transformers_case(args, work)]
    with open(os.path.join(work, "cases.json"), "w") as out:
        json.dump(cases, out)

    env = dict(os.environ, STEERLM_HF_INTEROP_CASES=os.path.join(work, "cases.json"))
    result = subprocess.run([args.tests, "--gtest_filter=HfInterop.*"], env=env)
    sys.exit(result.returncode)


if __name__ == "__main__":
    main()
