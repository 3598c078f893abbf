#!/usr/bin/env python3
"""A real LoRA fine-tune of SmolLM2-135M-Instruct, trained on the CPU with PEFT, LongLoRA-style:
LoRA r=8, alpha=16 on q/k/v/o_proj plus fully trained embeddings and norms (saved apart as
trainable_params.bin, as LongLoRA saves them). Trained on Fixtures/text/calibration.txt (the odd
Python reference topics), so its gain shows on Fixtures/text/heldout.txt (the even ones, never
trained on). Run by hand (tens of minutes on 2 cores); the result goes to
$SINKKIT_CACHE/smollm2-finetune/ (adapter files + trainable_params.bin + train_log.json) and is
what the quality measurements (scripts/quality_vs_llama_cpp.py) deploy at every bit width.

    pip install "torch==2.13.0+cpu" transformers peft safetensors
    python3 scripts/make_finetune.py [--steps 160] [--seq 256] [--batch 4]
"""
import argparse, json, math, os, random, time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("SINKKIT_CACHE", Path.home() / ".cache" / "sinkkit"))
BASE = CACHE / "smollm2-135m-instruct"
OUT = CACHE / "smollm2-finetune"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=160)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(BASE)
    model = AutoModelForCausalLM.from_pretrained(BASE, torch_dtype=torch.float32)
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")
    model = get_peft_model(model, cfg)
    # LongLoRA: embeddings and norms are trained in full alongside the LoRA factors.
    for n, p in model.named_parameters():
        if "embed" in n or "norm" in n:
            p.requires_grad = True
    ids = tok((ROOT / "Fixtures" / "text" / "calibration.txt").read_text(), return_tensors="pt")["input_ids"][0]
    windows = [ids[i:i + args.seq + 1] for i in range(0, len(ids) - args.seq - 1, args.seq)]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    model.train()
    log, t0 = [], time.time()
    for step in range(args.steps):
        batch = torch.stack(random.sample(windows, args.batch))
        out = model(input_ids=batch[:, :-1], labels=batch[:, :-1])
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step(); sched.step(); opt.zero_grad()
        log.append({"step": step + 1, "loss": out.loss.item(), "seconds": time.time() - t0})
        if (step + 1) % 10 == 0:
            print(f"step {step + 1}/{args.steps} loss {out.loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    tmp = OUT.with_name(OUT.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)        # adapter_config.json + adapter_model.safetensors (LoRA factors)
    trainable = {n.replace("base_model.model.", ""): p.detach().contiguous() for n, p in model.named_parameters()
                 if ("embed" in n or "norm" in n) and "lora_" not in n}
    torch.save(trainable, tmp / "trainable_params.bin")
    (tmp / "train_log.json").write_text(json.dumps({"args": vars(args), "log": log}, indent=1))
    if OUT.exists():
        import shutil
        shutil.rmtree(OUT)
    tmp.rename(OUT)
    print("wrote", OUT, "trainable:", sorted(trainable)[:3], "…", len(trainable))


if __name__ == "__main__":
    main()
