"""A tiny text-to-image Stable Diffusion pipeline with seeded random weights, saved in diffusers format.

Why it exists: no real model may be downloaded where gcx is tested, yet regeneration must be tested
end to end through the same loading code real models take. It builds in a second, saves in ~2 MB
and generates a 64x64 image in a fraction of a second. Its pictures are noise-like, not art.
"""

from __future__ import annotations

import json
from pathlib import Path

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _write_tokenizer_files(folder: Path) -> None:
    """A CLIP BPE vocabulary of single characters plus a few merges: enough to tokenise any ASCII prompt."""
    symbols = ["<|startoftext|>", "<|endoftext|>", "!"]
    symbols += [chr(c) for c in range(ord("!") + 1, 127)]
    symbols += [f"{c}</w>" for c in _LETTERS + "0123456789,.()"]
    merges = ["t h", "th e</w>", "a n", "i n", "e r", "o n"]
    symbols += ["th", "the</w>", "an", "in", "er", "on"]
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {s: i for i, s in enumerate(dict.fromkeys(symbols))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")


def build_tiny_pipeline(folder: str | Path, seed: int = 0) -> Path:
    """Create and save the pipeline in `folder` (a model-store entry); returns the folder."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=64,
    )
    _write_tokenizer_files(folder / "_tokenizer_src")
    tokenizer = CLIPTokenizer(
        str(folder / "_tokenizer_src" / "vocab.json"),
        str(folder / "_tokenizer_src" / "merges.txt"),
        model_max_length=77,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    for leftover in (folder / "_tokenizer_src").iterdir():
        leftover.unlink()
    (folder / "_tokenizer_src").rmdir()
    return folder
