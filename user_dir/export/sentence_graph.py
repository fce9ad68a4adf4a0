"""The ONNX graph of a sentence-prediction model: ``src_tokens`` (B, T) int64 -> ``logits`` (B, C).

One module serves every encoder of the project (they share the prunable core): stock and
``prunable_roberta`` models and Kprune's non-uniform layers run their layers as they are; LTP and
TR-BERT models run them through :class:`LtpLayers` / :class:`TrbertLayers`, which drop tokens
physically, per example, inside the graph. It computes the model's eval-mode forward
(``model(src_tokens, classification_head_name=head)[0]``): embeddings, layers, the optional final
LayerNorm, the classification head on ``<s>``. Batches are padded with the dictionary's pad index
(1 for fairseq), ``<s>`` first, as ``sentence_prediction`` builds them.
"""
import torch

from user_dir.export.ltp_graph import LtpLayers
from user_dir.export.onnx_export import export_graph
from user_dir.export.trbert_graph import TrbertLayers

INPUT = "src_tokens"
OUTPUT = "logits"


class _Layers:
    """Every token through every layer (stock, prunable and Kprune models)."""

    def __init__(self, encoder):
        self.encoder = encoder

    def __call__(self, x, padding):
        for layer in self.encoder.layers:
            x = layer(x, padding)
        return x, padding


def layer_runner(encoder):
    """How the encoder's layers run at inference: plain, LTP or TR-BERT token pruning."""
    from user_dir.ltp.encoder import LtpTransformerEncoder
    from user_dir.trbert.encoder import TrbertTransformerEncoder

    if isinstance(encoder, LtpTransformerEncoder):
        return LtpLayers(encoder)
    if isinstance(encoder, TrbertTransformerEncoder):
        return TrbertLayers(encoder)
    return _Layers(encoder)


class SentenceGraph(torch.nn.Module):
    def __init__(self, model, head: str):
        super().__init__()
        self.model = model.eval()
        self.head = head
        self.runner = layer_runner(self.encoder)

    @property
    def encoder(self):  # not a second registration of the same module
        return self.model.encoder.sentence_encoder

    def forward(self, src_tokens: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        padding = src_tokens.eq(enc.padding_idx)
        x, _ = enc.forward_embedding(src_tokens)
        x = x * (~padding).unsqueeze(-1).type_as(x)
        x, padding = self.runner(x, padding)
        if enc.layer_norm is not None:
            x = enc.layer_norm(x)
        return self.model.classification_heads[self.head](x)


def example_tokens(dictionary, max_positions: int, seed: int = 0) -> torch.Tensor:
    """A traced example: two rows of different lengths, ``<s>`` ... ``</s>``, right-padded."""
    g = torch.Generator().manual_seed(seed)
    length = max(4, min(16, max_positions))
    tokens = torch.full((2, length), dictionary.pad(), dtype=torch.long)
    for row, n in enumerate((length, length - 2)):
        tokens[row, 0] = dictionary.bos()
        tokens[row, 1:n - 1] = torch.randint(dictionary.nspecial, len(dictionary), (n - 2,), generator=g)
        tokens[row, n - 1] = dictionary.eos()
    return tokens


def export_sentence(model, head: str, dictionary, path: str, exporter: str = "torchscript") -> dict:
    """Write ``model``'s eval forward to ``path`` (dynamic batch and length)."""
    graph = SentenceGraph(model, head)
    tokens = example_tokens(dictionary, model.max_positions())
    info = export_graph(graph, (tokens,), path, [INPUT], [OUTPUT],
                        {INPUT: {0: "batch", 1: "length"}, OUTPUT: {0: "batch"}}, exporter)
    return dict(info, inputs={INPUT: ["batch", "length"]}, outputs={OUTPUT: ["batch", _classes(model, head)]})


def _classes(model, head: str) -> int:
    return int(model.classification_heads[head].out_proj.out_features)
