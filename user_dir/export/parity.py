"""Does the export compute what fairseq computes? Outputs of onnxruntime against the PyTorch model.

* sentence prediction: the logits of every example of a split (fairseq's length-sorted batches, as
  the bench scores them), compared with the checkpoint's eval forward: max and mean absolute
  difference, examples over the tolerance, agreement of the argmax (the predicted class), and the
  per-example encoder MACs of the split (what ``--check-parity`` adds to the model card for
  token-pruning models, whose cost depends on the input).
* translation: the decoder step's logits, teacher-forced on the split's references with the
  incremental caches (max |diff| over the real prefix positions, argmax agreement), and fairseq's
  beam search run on both (``user_dir.export.ort_translation``): BLEU as the bench computes it and
  the share of identical hypotheses.

The tolerance is 1e-4 (fp32). With token pruning a score within float rounding of a threshold
may be decided differently by the two runtimes; such an example shows up as a large difference for
that one example, which is why the report counts examples over the tolerance and the argmax
agreement, not only the maximum.
"""
import copy
import os
from typing import Optional

import numpy as np
import torch

from user_dir.common.checkpoint_info import cfg_set
from user_dir.export import ort_runtime

TOLERANCE = 1e-4


def task_for(source, data: Optional[str]):
    """The checkpoint's task over ``data`` (its own data folder when None)."""
    if not data or os.path.abspath(data) == os.path.abspath(source.data):
        return source.task
    from fairseq import tasks

    cfg = copy.deepcopy(source.cfg.task)
    cfg_set(cfg, "data", data)
    return tasks.setup_task(cfg)


def _summary(diffs, agree, examples, tolerance) -> dict:
    diffs = np.asarray(diffs, dtype=np.float64)
    return {"examples": int(examples), "max_abs_diff": float(diffs.max()) if diffs.size else 0.0,
            "mean_abs_diff": float(diffs.mean()) if diffs.size else 0.0, "tolerance": tolerance,
            "over_tolerance": int((diffs > tolerance).sum()),
            "argmax_agreement": None if agree is None else float(np.mean(agree)) if len(agree) else 1.0,
            "passed": bool(diffs.size == 0 or diffs.max() <= tolerance)}


@torch.no_grad()
def sentence_parity(source, model_onnx: str, data: Optional[str] = None, subset: str = "test",
                    batch_size: int = 32, limit: int = 0, threads: int = 1, tolerance: float = TOLERANCE) -> dict:
    from user_dir.bench.sentence import SentenceModel, batches, forward_with_cost

    task = task_for(source, data)
    sess = ort_runtime.session(model_onnx, threads)
    samples = batches(task, subset, batch_size, limit=limit, max_positions=source.reference.max_positions())
    reference = SentenceModel("reference", source.path, source.reference, task, source.head, source.regression)
    diffs, agree, macs = [], [], 0.0
    for sample in samples:
        tokens = sample["net_input"]["src_tokens"]
        ref, cost, _ = forward_with_cost(reference, tokens)
        out = sess.run(["logits"], {"src_tokens": tokens.numpy()})[0]
        ref = ref.float().numpy()
        diffs += np.abs(out - ref).max(axis=1).tolist()
        if not source.regression:
            agree += (out.argmax(1) == ref.argmax(1)).tolist()
        macs += float(cost.sum())
    out = _summary(diffs, None if source.regression else agree, len(diffs), tolerance)
    out.update({"subset": subset, "data": os.path.abspath(task.cfg.data), "batch_size": batch_size,
                "macs_per_example": macs / max(1, len(diffs))})
    return out


@torch.no_grad()
def translation_parity(source, encoder_onnx: str, decoder_onnx: str, data: Optional[str] = None,
                       subset: str = "test", batch_size: int = 128, limit: int = 0, beam: int = 5,
                       threads: int = 1, tolerance: float = TOLERANCE) -> dict:
    from user_dir.bench import translation as bench
    from user_dir.export import ort_translation

    task = task_for(source, data)
    ref = source.reference
    onnx_model = ort_translation.load(encoder_onnx, decoder_onnx, task.source_dictionary, task.target_dictionary,
                                      ref.encoder.max_positions(), ref.decoder.max_positions(), threads)
    samples = bench.batches(task, subset, batch_size, limit=limit,
                            max_positions=bench.max_positions(task, [bench.wrap(ref, task, "ref")]))
    diffs, agree = [], []
    for sample in samples:
        d, a = _step_parity(ref, onnx_model, sample, task.target_dictionary.pad())
        diffs += d
        agree += a
    out = _summary(diffs, agree, sum(s["nsentences"] for s in samples), tolerance)
    out["compared"] = "decoder step logits per real target position (teacher-forced, incremental caches)"
    torch_bleu = bench.bleu(bench.wrap(ref, task, "pytorch"), samples, task, beam)
    onnx_bleu = bench.bleu(bench.wrap(onnx_model, task, "onnxruntime"), samples, task, beam)
    same = [a == b for a, b in zip(torch_bleu["hypotheses"], onnx_bleu["hypotheses"])]
    out.update({"subset": subset, "data": os.path.abspath(task.cfg.data), "beam": beam,
                "bleu_pytorch": torch_bleu["bleu"], "bleu_onnxruntime": onnx_bleu["bleu"],
                "identical_hypotheses": float(np.mean(same)) if same else 1.0})
    out["passed"] = out["passed"] and out["identical_hypotheses"] == 1.0
    return out


def _step_parity(ref, onnx_model, sample, pad: int):
    """Per-position |diff| (max over the vocabulary) and argmax agreement of one batch."""
    net = sample["net_input"]
    prev = net["prev_output_tokens"]
    ref_enc = ref.encoder(net["src_tokens"], src_lengths=net["src_lengths"])
    onnx_enc = onnx_model.encoder(net["src_tokens"], src_lengths=net["src_lengths"])
    ref_state, onnx_state = {}, {}
    diffs, agree = [], []
    for t in range(prev.size(1)):
        a = ref.decoder(prev[:, :t + 1], ref_enc, incremental_state=ref_state)[0][:, -1].float()
        b = onnx_model.decoder(prev[:, :t + 1], onnx_enc, incremental_state=onnx_state)[0][:, -1]
        # right-padded references: after a row's end its prefix holds padding, which decoding never has
        real = (prev[:, :t + 1] != pad).all(dim=1)
        diffs += (a - b).abs().max(dim=1).values[real].tolist()
        agree += (a.argmax(1) == b.argmax(1))[real].tolist()
    return diffs, agree
