"""Stage 3: mask tuning ("rescale"): layer-wise least squares on the kept units' mask values.

Layer by layer, bottom-up, the values of the kept heads and then of the kept neurons are refit so
that the sublayer's pre-LayerNorm sum matches the teacher's. With ``R`` the student's residual
(the sublayer input), ``b`` the output-projection bias and ``Y_T`` the teacher's
``residual + out_proj(x)``, the target is ``B = Y_T − b − R`` and unit ``i`` contributes
``O_i`` (its slice of the output projection applied to its own input), so

    min_m || Σ_i m_i O_i − B ||²      over all real tokens and dimensions.

As in the original:

* the teacher is the model under ``teacher`` masks (Kwon et al. use the search's result at the
  milder constraint ``sqrt`` of the kept fraction; the unpruned model is the all-ones masks);
* the student's inputs come from the already tuned layers below; the FFN is fit after the heads
  of the same layer have their new values;
* the attention fit has an extra all-ones column (a constant offset, solved for and dropped);
  layer 0's heads are never tuned; the last layer's FFN is fit on the first (``<s>``/CLS) token of
  each sequence only, the one the classification head reads;
* the normal equations ``AᵀA m = Aᵀb`` are solved as ``AᵀA δ = Aᵀb − AᵀA·1`` for ``δ = m − 1``
  by LSMR with damping ``damp`` (1 in the original; LSMR then minimises
  ``||AᵀA δ − r||² + damp²·||δ||²``), with CuPy's defaults (``atol = btol = 1e-6``,
  ``conlim = 1e8``, at most ``5·unknowns`` iterations);
* if LSMR stops with ``istop >= 3`` (ill-conditioned / no convergence) or a value leaves
  ``[-10, 10]``, tuning ends there: that sublayer and every later one keep their 0/1 masks;
* the FFN target uses *all* of the teacher's neurons in the layer being fit (in the original, the
  hook that reads the FFN input runs before the one that masks it); the teacher's neuron masks
  still apply to its hidden states passed up. ``mask_teacher_ffn=True`` masks the target too.

Differences: the normal equations are accumulated and solved in float64 with SciPy's LSMR on the
CPU (the original: float32, CuPy's LSMR on the GPU; same algorithm and settings); a fit with one unknown is
``r / AᵀA`` as in the original, where it then crashed on an unset variable; when the values at 1
already fit exactly (``|r| <= 1e-10·|Aᵀb|``, i.e. the student equals the teacher up to that
sublayer), ``δ = 0`` is taken as LSMR would for ``r = 0`` instead of iterating on rounding noise.
"""
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from tqdm import tqdm

from user_dir.kprune.kwon.masks import KwonMasks
from user_dir.kprune.sublayers import ATTENTION, FFN, first_layer_input, run_sublayer

MAX_ABS_SCALE = 10.0  # the original's sanity bound on a tuned value
LSMR_MAXITER_FACTOR = 5
EXACT_RTOL = 1e-10  # |Aᵀb − AᵀA·1| below this, relative to |Aᵀb|, is rounding: the values stay 1


@dataclass
class SublayerFit:
    layer: int
    kind: str
    units: int
    error_before: float  # ||Σ m_i O_i − B||² with the kept values at 1
    error_after: float  # ... with the solution (the constant column dropped)
    target_energy: float  # ||B||²
    scale_min: float
    scale_max: float
    istop: int  # LSMR's stop reason (< 3: a solution)
    applied: bool


@dataclass
class RescaleResult:
    masks: KwonMasks
    fits: List[SublayerFit]
    stopped: Optional[str] = None  # why tuning ended early, if it did

    def summary(self) -> dict:
        return {"fits": [asdict(f) for f in self.fits], "stopped": self.stopped}


def lsmr_solve(ata: torch.Tensor, atb: torch.Tensor, damp: float) -> Tuple[np.ndarray, int]:
    """The original's solver: LSMR on ``AᵀA δ = Aᵀb − AᵀA·1``, returns ``(1 + δ, istop)``."""
    A = ata.double().cpu().numpy()
    b = atb.double().cpu().numpy()
    r = b - A.sum(axis=1)
    if np.linalg.norm(r) <= EXACT_RTOL * np.linalg.norm(b):
        # the kept units at 1 already reproduce the teacher (student = teacher so far): r is
        # float64 rounding, and LSMR's answer to r = 0 is δ = 0 (istop 0); iterating on the
        # noise of an ill-conditioned AᵀA would only run into maxiter (istop 7)
        return np.ones_like(r), 0
    if r.size == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = r / A[0, 0]
        istop = 1 if np.all(np.isfinite(delta)) else 7
    else:
        from scipy.sparse.linalg import lsmr

        # CuPy's lsmr, which the original calls, iterates up to 5·min(m, n) times (SciPy's: min(m, n))
        solution = lsmr(A, r, damp=damp, maxiter=LSMR_MAXITER_FACTOR * r.size)
        delta, istop = solution[0], int(solution[1])
    return 1.0 + delta, istop


def _input_of(module, run):
    """The first positional input ``module`` received while ``run()`` ran."""
    seen = {}
    handle = module.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    try:
        with torch.no_grad():
            run()
    finally:
        handle.remove()
    return seen["x"]


def _padding_arg(batch):
    return batch.padding_mask if batch.padding_mask.any() else None


def _rows(t: torch.Tensor, batch, first_token_only: bool) -> torch.Tensor:
    """The rows a fit runs over: every real token, or the first token of each sequence."""
    return t[:, 0] if first_token_only else t[batch.real]


def _quadratic_error(m: torch.Tensor, G: torch.Tensor, c: torch.Tensor, bb: torch.Tensor) -> float:
    return float(m @ G @ m - 2.0 * (m @ c) + bb)


def attention_normal_equations(layer, kept: torch.Tensor, batches, student_in, teacher_in,
                               teacher_head_mask: torch.Tensor):
    """``AᵀA``, ``Aᵀb`` (kept heads + the constant column) and ``||b||²`` over all real tokens."""
    attn = layer.self_attn
    hd, d = attn.head_dim, attn.embed_dim
    W = attn.out_proj.weight.detach().double().view(d, attn.num_heads, hd)
    k = int(kept.numel())
    dev = W.device
    G = torch.zeros(k + 1, k + 1, dtype=torch.float64, device=dev)
    c = torch.zeros(k + 1, dtype=torch.float64, device=dev)
    bb = torch.zeros((), dtype=torch.float64, device=dev)
    m_t = teacher_head_mask.double().repeat_interleave(hd)
    for batch, x_s, x_t in zip(batches, student_in, teacher_in):
        pad, real = _padding_arg(batch), batch.real
        ctx_s = _input_of(attn.out_proj, lambda: attn(x_s, key_padding_mask=pad))[real].double()
        ctx_t = _input_of(attn.out_proj, lambda: attn(x_t, key_padding_mask=pad))[real].double()
        # B = Y_T − b − R: the biases cancel
        target = (x_t[real].double() - x_s[real].double()) + (ctx_t * m_t) @ W.view(d, -1).T
        outputs = torch.einsum("nhe,dhe->hnd", ctx_s.view(-1, attn.num_heads, hd)[:, kept], W[:, kept])
        O = outputs.reshape(k, -1)
        b = target.reshape(-1)
        G[:k, :k] += O @ O.T
        sums = O.sum(1)
        G[:k, k] += sums
        G[k, :k] += sums
        G[k, k] += b.numel()
        c[:k] += O @ b
        c[k] += b.sum()
        bb += b @ b
    return G, c, bb


def ffn_normal_equations(layer, kept: torch.Tensor, batches, student_mid, teacher_mid,
                         teacher_neuron_mask: Optional[torch.Tensor], first_token_only: bool):
    """``AᵀA``, ``Aᵀb`` over the kept neurons and ``||b||²``; ``teacher_neuron_mask`` None = all."""
    W = layer.fc2.weight.detach().double()  # (d, F)
    Wk = W[:, kept]
    k = int(kept.numel())
    dev = W.device
    HtH = torch.zeros(k, k, dtype=torch.float64, device=dev)
    c = torch.zeros(k, dtype=torch.float64, device=dev)
    bb = torch.zeros((), dtype=torch.float64, device=dev)
    m_t = None if teacher_neuron_mask is None else teacher_neuron_mask.double()
    for batch, x_s, x_t in zip(batches, student_mid, teacher_mid):
        h_s = _input_of(layer.fc2, lambda: layer.ffn_block(x_s))
        h_t = _input_of(layer.fc2, lambda: layer.ffn_block(x_t))
        h_s = _rows(h_s, batch, first_token_only).double()
        h_t = _rows(h_t, batch, first_token_only).double()
        if m_t is not None:
            h_t = h_t * m_t
        residual_gap = _rows(x_t, batch, first_token_only).double() - _rows(x_s, batch, first_token_only).double()
        target = residual_gap + h_t @ W.T
        H = h_s[:, kept]
        HtH += H.T @ H
        c += (H * (target @ Wk)).sum(0)
        bb += target.pow(2).sum()
    return HtH * (Wk.T @ Wk), c, bb


def rescale_masks(model, batches: Sequence, student: KwonMasks, teacher: KwonMasks, damp: float = 1.0,
                  head_name: str = "sentence_classification_head", mask_teacher_ffn: bool = False,
                  progress: bool = False) -> RescaleResult:
    """Tune the kept units' mask values of ``student`` (0/1 on entry); returns new masks + log."""
    masks = student.clone()
    fits: List[SublayerFit] = []
    stopped = None
    L = len(model.layers)
    with torch.no_grad():
        student_in = [first_layer_input(model, b.tokens, head_name)[0] for b in batches]
    teacher_in = list(student_in)  # the embeddings do not depend on any mask

    def fit(l, kind, G, c, bb, k):
        nonlocal stopped
        x, istop = lsmr_solve(G, c, damp)
        values = x[:k]
        ones = torch.ones(k, dtype=torch.float64, device=G.device)
        sol = torch.as_tensor(values, dtype=torch.float64, device=G.device)
        finite = bool(np.all(np.isfinite(values)))
        ok = bool(istop < 3 and finite and values.max() <= MAX_ABS_SCALE and values.min() >= -MAX_ABS_SCALE)
        Gk, ck = G[:k, :k], c[:k]
        record = SublayerFit(l, kind, k, _quadratic_error(ones, Gk, ck, bb),
                             _quadratic_error(sol, Gk, ck, bb) if finite else float("nan"), float(bb),
                             float(values.min()), float(values.max()), istop, ok)
        fits.append(record)
        if not ok:
            why = f"LSMR istop {istop}" if istop >= 3 or not finite else \
                f"a value outside [-{MAX_ABS_SCALE:g}, {MAX_ABS_SCALE:g}]"
            stopped = f"layer {l} {kind}: {why}; this and later sublayers keep their 0/1 masks"
        return sol if ok else None

    for l in tqdm(range(L), desc="kwon rescale", unit="layer", disable=not progress):
        layer = model.layers[l]
        kept_heads = masks.head_keep(l).nonzero().flatten()
        # the original never tunes layer 0's heads
        if l > 0 and kept_heads.numel():
            G, c, bb = attention_normal_equations(layer, kept_heads, batches, student_in, teacher_in,
                                                  teacher.heads[l])
            sol = fit(l, ATTENTION, G, c, bb, kept_heads.numel())
            if sol is None:
                break
            masks.heads[l][kept_heads] = sol.to(masks.heads[l])
        with torch.no_grad(), masks.applied(model):
            student_mid = [run_sublayer(layer, ATTENTION, x, b.padding_mask) for x, b in zip(student_in, batches)]
        with torch.no_grad(), teacher.applied(model):
            teacher_mid = [run_sublayer(layer, ATTENTION, x, b.padding_mask) for x, b in zip(teacher_in, batches)]
        student_in = teacher_in = None  # only the attention outputs are needed from here on

        kept_neurons = masks.neuron_keep(l).nonzero().flatten()
        if kept_neurons.numel():
            G, c, bb = ffn_normal_equations(layer, kept_neurons, batches, student_mid, teacher_mid,
                                            teacher.neurons[l] if mask_teacher_ffn else None,
                                            first_token_only=(l == L - 1))
            sol = fit(l, FFN, G, c, bb, kept_neurons.numel())
            if sol is None:
                break
            masks.neurons[l][kept_neurons] = sol.to(masks.neurons[l])
        if l < L - 1:
            with torch.no_grad(), masks.applied(model):
                student_in = [run_sublayer(layer, FFN, x, None) for x in student_mid]
            with torch.no_grad(), teacher.applied(model):
                teacher_in = [run_sublayer(layer, FFN, x, None) for x in teacher_mid]
    return RescaleResult(masks, fits, stopped)
