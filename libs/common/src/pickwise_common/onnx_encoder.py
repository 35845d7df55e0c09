"""An ONNX Runtime export of a local sentence-transformers model (transformer + mean/CLS pooling + L2 norm).

The export is built here, from the model's own local weights (``torch.onnx.export``; nothing is downloaded),
once per model fingerprint, into ``<cache_dir>/<fingerprint>/``: ``model.onnx`` (fp32) and, when asked,
``model.int8.onnx`` (``onnxruntime.quantization.quantize_dynamic``). Pooling and normalisation are inside
the graph, so a run returns the same unit vectors ``SentenceTransformer.encode(normalize_embeddings=True)``
does (cosine ≥ 0.9999 in fp32, measured in docs/benchmarks.md). Tokenisation is the model's own
``tokenizer.json`` through the Rust ``tokenizers`` library, truncated at the model's ``max_seq_length``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("pickwise.embeddings")

# bump when the export itself changes (graph, opset, pooling), so caches built by older code are rebuilt
EXPORT_VERSION = 2
OPSET = 17
# files whose bytes make a model: a changed weight, tokenizer or pooling file gives a new fingerprint
_FINGERPRINT_FILES = ("config.json", "tokenizer.json", "sentence_bert_config.json", "modules.json",
                      "1_Pooling/config.json", "model.safetensors", "pytorch_model.bin")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxUnavailable(RuntimeError):
    """The model cannot be exported to, or run by, ONNX Runtime here (the caller falls back to torch)."""


def fingerprint(model_dir: Path) -> str:
    """sha256 over the model's weight, config and tokenizer files and the export version (16 hex digits)."""
    digest = hashlib.sha256(f"pickwise-onnx-export-v{EXPORT_VERSION}-opset{OPSET}".encode())
    for name in _FINGERPRINT_FILES:
        path = model_dir / name
        if not path.is_file():
            continue
        digest.update(name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def pooling_mode(model_dir: Path) -> str:
    """``mean`` or ``cls`` from the model's pooling config; anything else cannot be exported here."""
    config_path = model_dir / "1_Pooling" / "config.json"
    if not config_path.is_file():
        raise OnnxUnavailable(f"{model_dir} has no 1_Pooling/config.json (not a sentence-transformers model)")
    config = json.loads(config_path.read_text())
    if config.get("pooling_mode_mean_tokens"):
        return "mean"
    if config.get("pooling_mode_cls_token"):
        return "cls"
    raise OnnxUnavailable(f"pooling {config} of {model_dir} is not supported by the ONNX export")


def max_seq_length(model_dir: Path) -> int:
    config_path = model_dir / "sentence_bert_config.json"
    if config_path.is_file():
        value = json.loads(config_path.read_text()).get("max_seq_length")
        if value:
            return int(value)
    return 512


def model_files(model_dir: Path, cache_dir: Path, *, quantize: bool) -> Path:
    """The ONNX file for ``model_dir`` (int8 when ``quantize``), exporting it first when the cache lacks it.

    Safe against concurrent builders (several workers starting at once): each builds in its own temporary
    directory and renames it into place; a loser of the race uses the winner's files."""
    target = cache_dir / fingerprint(model_dir)
    name = "model.int8.onnx" if quantize else "model.onnx"
    if (target / name).is_file():
        return target / name
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache_dir))
    work.chmod(0o755)
    try:
        fp32 = target / "model.onnx"
        if fp32.is_file():
            shutil.copy2(fp32, work / "model.onnx")
        else:
            export(model_dir, work / "model.onnx")
        if quantize:
            _quantize(work / "model.onnx", work / "model.int8.onnx")
        (work / "manifest.json").write_text(json.dumps({
            "source": str(model_dir), "fingerprint": target.name, "export_version": EXPORT_VERSION,
            "opset": OPSET, "pooling": pooling_mode(model_dir), "max_seq_length": max_seq_length(model_dir),
            "files": sorted(p.name for p in work.iterdir())}, indent=2))
        if not target.exists():
            try:
                os.replace(work, target)
            except OSError:  # another process renamed its build into place first
                pass
        if work.exists():  # the directory was there already: add what this build made to it
            for path in work.iterdir():
                if not (target / path.name).exists():
                    os.replace(path, target / path.name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not (target / name).is_file():
        raise OnnxUnavailable(f"the ONNX build of {model_dir} left no {name} in {target}")
    log.info("onnx export of %s ready: %s", model_dir, target / name)
    return target / name


def export(model_dir: Path, out: Path) -> None:
    """``torch.onnx.export`` of transformer + pooling + L2 normalisation, dynamic batch and sequence axes."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise OnnxUnavailable(f"exporting needs torch and transformers: {exc}") from exc
    mode = pooling_mode(model_dir)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask,
                                      token_type_ids=token_type_ids).last_hidden_state
            if mode == "cls":
                pooled = hidden[:, 0]
            else:
                weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    sample = torch.ones(2, 8, dtype=torch.long)
    axes = {k: {0: "batch", 1: "sequence"} for k in _INPUTS} | {"embedding": {0: "batch"}}
    try:
        import warnings

        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(Pooled(), (sample, sample, torch.zeros_like(sample)), str(out),
                              input_names=list(_INPUTS), output_names=["embedding"], dynamic_axes=axes,
                              opset_version=OPSET, dynamo=False)
    except Exception as exc:  # noqa: BLE001 - any exporter failure means "use torch"; the caller logs it
        raise OnnxUnavailable(f"torch.onnx.export of {model_dir} failed: {exc}") from exc


def _quantize(fp32: Path, int8: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its "pre-process" hint
        # per-channel weights, MatMul only: cosine with fp32 ≈ 0.993 on shopper queries, where per-tensor
        # quantisation of every op gave 0.92-0.97 (docs/benchmarks.md)
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
    except Exception as exc:  # noqa: BLE001 - as for the export
        raise OnnxUnavailable(f"int8 quantisation of {fp32} failed: {exc}") from exc


class OnnxEncoder:
    """Runs the exported graph: texts → L2-normalised float32 vectors. ``run`` releases the GIL."""

    def __init__(self, onnx_path: Path, model_dir: Path, *, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise OnnxUnavailable(f"onnxruntime/tokenizers missing: {exc}") from exc
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: fall back, say why
            raise OnnxUnavailable(f"cannot load {onnx_path}: {exc}") from exc
        self.tokenizer.enable_truncation(max_seq_length(model_dir))
        pad_id = self.tokenizer.token_to_id("[PAD]")
        self.tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.path = onnx_path
        self.dim = int(self.session.get_outputs()[0].shape[1] or 0) or self.encode(["dim"]).shape[1]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        # batches of similar lengths pad less (as sentence-transformers does); rows come back in input order
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        chunks = []
        for start in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch([texts[n] for n in order[start:start + batch_size]])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            chunks.append(self.session.run(None, {k: v for k, v in feeds.items() if k in self.input_names})[0])
        if not chunks:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        out[order] = np.vstack(chunks)
        return out


def main() -> int:
    """``python -m pickwise_common.onnx_encoder``: build the export of the configured embedding model now (the
    install step runs it), fp32 and int8, so the first start of a retriever does not pay for it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from pickwise_common.embeddings import resolve_model_path
    from pickwise_common.settings import ModelSettings

    settings = ModelSettings()
    source = resolve_model_path(settings.embedding_model)
    try:
        for quantize in (False, True):
            print(model_files(source, Path(settings.models_dir) / "onnx", quantize=quantize))
    except OnnxUnavailable as exc:
        print(f"onnx export unavailable, the services will encode with torch: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
