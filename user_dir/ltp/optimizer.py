"""Optimizer ``ltp_adam``: fairseq's Adam with the LTP thresholds in their own parameter group.

fairseq gives an optimizer one flat list of parameters. Parameters that carry a ``param_group``
attribute (fairseq's own convention, also read by the composite optimizer) are split off here into
their own torch param group; their ``optim_overrides`` dict sets ``lr`` (absolute, None = the model
lr) and ``weight_decay``. The group's lr follows the lr scheduler in proportion: fairseq's
schedulers call :meth:`set_lr` with one number, and each group gets that number times its
``lr_scale`` (threshold lr / model lr), as HF's per-group schedules did in the original.

Mixed precision: fairseq's ``--bf16``/``--fp16-no-flatten-grads`` wrappers build one fp32 master
copy per parameter and copy ``param_group``/``optim_overrides`` onto it, and
``--memory-efficient-fp16/-bf16`` pass the parameters themselves, so the group survives and the
thresholds are learned in fp32. Plain ``--fp16`` flattens all parameters into one tensor, which
cannot hold two groups: ``supports_flat_params`` is False, so fairseq refuses that combination
before training and names the fix (``--fp16-no-flatten-grads``).
"""
from collections.abc import Collection
from dataclasses import dataclass

from fairseq.optim import register_optimizer
from fairseq.optim.adam import FairseqAdam, FairseqAdamConfig

DEFAULT_GROUP = "default"


@dataclass
class LtpAdamConfig(FairseqAdamConfig):
    pass


def split_groups(params, base_lr: float):
    """One torch param group per ``param_group`` name; the default group first (``get_lr`` reads it)."""
    groups = {DEFAULT_GROUP: {"params": [], "lr_scale": 1.0, "name": DEFAULT_GROUP}}
    for p in params:
        name = getattr(p, "param_group", DEFAULT_GROUP)
        if name not in groups:
            overrides = dict(getattr(p, "optim_overrides", None) or {})
            group = {"params": [], "name": name, "lr_scale": 1.0}
            if overrides.get("lr") is not None:
                group["lr_scale"] = float(overrides["lr"]) / base_lr
            group["lr"] = base_lr * group["lr_scale"]
            if overrides.get("weight_decay") is not None:
                group["weight_decay"] = float(overrides["weight_decay"])
            groups[name] = group
        groups[name]["params"].append(p)
    return [g for g in groups.values() if g["params"]]


@register_optimizer("ltp_adam", dataclass=LtpAdamConfig)
class LtpAdam(FairseqAdam):
    def __init__(self, cfg: LtpAdamConfig, params):
        base_lr = cfg.lr[0] if isinstance(cfg.lr, Collection) else cfg.lr
        super().__init__(cfg, split_groups(list(params), float(base_lr)))

    @property
    def supports_flat_params(self):
        return False  # one flat tensor cannot keep the thresholds apart

    def get_lr(self):
        return self.param_groups[0]["lr"] / self.param_groups[0].get("lr_scale", 1.0)

    def set_lr(self, lr):
        for group in self.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)

    def load_state_dict(self, state_dict, optimizer_overrides=None):
        super().load_state_dict(state_dict, optimizer_overrides)
        if optimizer_overrides and "lr" in optimizer_overrides:
            # the overrides wrote one lr into every group; put the per-group scales back
            self.set_lr(optimizer_overrides["lr"])
